#include "CReplicaIBVerbsShims.h"
#if defined(REPLICA_RDMA)
int CReplicaIBVerbs_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr) {
    return ibv_query_port(context, port, attr);
}
struct ibv_mr *CReplicaIBVerbs_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access) {
    return ibv_reg_mr(pd, addr, length, access);
}
#else
typedef int c_replica_ibverbs_shims_empty_unit;
#endif
