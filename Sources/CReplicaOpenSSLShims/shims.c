#include "CReplicaOpenSSLShims.h"

int CReplicaOpenSSLShims_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_min_proto_version(ctx, version);
}
long CReplicaOpenSSLShims_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
int CReplicaOpenSSLShims_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return (int)SSL_set_tlsext_host_name(ssl, name);
}
int CReplicaOpenSSLShims_TLS1_3_VERSION(void) { return TLS1_3_VERSION; }
int CReplicaOpenSSLShims_TLS1_2_VERSION(void) { return TLS1_2_VERSION; }
