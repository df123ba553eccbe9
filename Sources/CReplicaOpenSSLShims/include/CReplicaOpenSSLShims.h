// Functions for OpenSSL APIs that are macros (Swift cannot import those).
#ifndef C_REPLICA_OPENSSL_SHIMS_H
#define C_REPLICA_OPENSSL_SHIMS_H
#include <openssl/ssl.h>

/// SSL_CTX_set_min_proto_version (a macro in OpenSSL 3).
int CReplicaOpenSSLShims_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version);
/// SSL_CTX_set_mode (a macro).
long CReplicaOpenSSLShims_SSL_CTX_set_mode(SSL_CTX *ctx, long mode);
/// SSL_set_tlsext_host_name (a macro).
int CReplicaOpenSSLShims_SSL_set_tlsext_host_name(SSL *ssl, const char *name);
/// TLS1_3_VERSION.
int CReplicaOpenSSLShims_TLS1_3_VERSION(void);
/// TLS1_2_VERSION.
int CReplicaOpenSSLShims_TLS1_2_VERSION(void);
#endif
