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
/// SSL_CTX_set_max_proto_version (a macro).
int CReplicaOpenSSLShims_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version);
/// SSL_CTX_set_options (kept as a function whatever the OpenSSL version).
uint64_t CReplicaOpenSSLShims_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options);
/// SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION.
uint64_t CReplicaOpenSSLShims_hardening_options(void);
/// SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER.
long CReplicaOpenSSLShims_partial_write_modes(void);

/// Peer verification of a context: both sides present a certificate and verify the other's.
/// `pin` (32 bytes, the SHA-256 of the peer certificate's DER form) or NULL; with a pin and
/// `require_chain` 0, a chain that does not lead to a trusted CA is accepted when the leaf
/// matches the pin (every other check, expiry and host name included, still applies); with
/// `require_chain` 1 both must hold. Returns 1 on success.
int CReplicaOpenSSLShims_set_peer_verification(SSL_CTX *ctx, const unsigned char *pin, int require_chain);

/// TLS-PSK for a server (NBD's, as nbdkit's --tls-psk): `count` identities with their keys,
/// copied into the context (freed with it); a client offering another identity is refused.
/// TLS 1.3 uses them with a SHA-256 cipher suite. Returns 1 on success.
int CReplicaOpenSSLShims_set_psk_table(SSL_CTX *ctx, const char *const *identities, const unsigned char *const *keys,
                                       const unsigned int *lengths, int count);

/// The SHA-256 of `cert`'s DER form into `out` (32 bytes). Returns 1 on success.
int CReplicaOpenSSLShims_certificate_sha256(X509 *cert, unsigned char *out);
#endif
