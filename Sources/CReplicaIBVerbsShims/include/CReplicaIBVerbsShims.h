// Wrappers for libibverbs calls that are macros or static inlines. Empty unless the
// package trait RDMA is enabled (which defines REPLICA_RDMA for this target).
#ifndef C_REPLICA_IBVERBS_SHIMS_H
#define C_REPLICA_IBVERBS_SHIMS_H
#if defined(REPLICA_RDMA)
#if __has_include(<infiniband/verbs.h>)
#include <infiniband/verbs.h>
#else
#error "RDMA trait enabled but <infiniband/verbs.h> is missing: apt-get install libibverbs-dev"
#endif

/// ibv_query_port (a macro in rdma-core).
int CReplicaIBVerbs_query_port(struct ibv_context *context, uint8_t port, struct ibv_port_attr *attr);
/// ibv_reg_mr (a macro in rdma-core).
struct ibv_mr *CReplicaIBVerbs_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);
/// ibv_post_send (static inline).
static inline int CReplicaIBVerbs_post_send(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad) {
    return ibv_post_send(qp, wr, bad);
}
/// ibv_post_recv (static inline).
static inline int CReplicaIBVerbs_post_recv(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad) {
    return ibv_post_recv(qp, wr, bad);
}
/// ibv_poll_cq (static inline).
static inline int CReplicaIBVerbs_poll_cq(struct ibv_cq *cq, int n, struct ibv_wc *wc) {
    return ibv_poll_cq(cq, n, wc);
}
#endif
#endif
