#include <string.h>
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
int CReplicaOpenSSLShims_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return (int)SSL_CTX_set_max_proto_version(ctx, version);
}
uint64_t CReplicaOpenSSLShims_SSL_CTX_set_options(SSL_CTX *ctx, uint64_t options) {
    return (uint64_t)SSL_CTX_set_options(ctx, options);
}
uint64_t CReplicaOpenSSLShims_hardening_options(void) {
    return (uint64_t)(SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
}
long CReplicaOpenSSLShims_partial_write_modes(void) {
    return SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER;
}

int CReplicaOpenSSLShims_certificate_sha256(X509 *cert, unsigned char *out) {
    unsigned int length = 0;
    return X509_digest(cert, EVP_sha256(), out, &length) == 1 && length == 32;
}

/* The pin of a context, in its ex_data slot (freed with the context). */
struct replica_pin {
    unsigned char sha256[32];
    int require_chain;
};

static int pin_index = -1;
static CRYPTO_ONCE pin_index_once = CRYPTO_ONCE_STATIC_INIT;

static void pin_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    OPENSSL_free(ptr);
}

static void pin_index_init(void) {
    pin_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, pin_free);
}

/* Errors that only say the chain does not end at a trusted CA: a pinned leaf makes up for them. */
static int is_trust_error(int error) {
    switch (error) {
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
        return 1;
    default:
        return 0;
    }
}

static int verify_with_pin(int preverified, X509_STORE_CTX *store) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct replica_pin *pin = ssl ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), pin_index) : NULL;
    if (pin == NULL) return preverified;
    int depth = X509_STORE_CTX_get_error_depth(store);
    if (!preverified) {
        if (pin->require_chain || !is_trust_error(X509_STORE_CTX_get_error(store))) return 0;
    }
    if (depth != 0) return 1;
    unsigned char digest[32];
    X509 *leaf = X509_STORE_CTX_get_current_cert(store);
    if (leaf == NULL || !CReplicaOpenSSLShims_certificate_sha256(leaf, digest) || CRYPTO_memcmp(digest, pin->sha256, 32) != 0) {
        X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
        return 0;
    }
    return 1;
}

int CReplicaOpenSSLShims_set_peer_verification(SSL_CTX *ctx, const unsigned char *pin, int require_chain) {
    if (!CRYPTO_THREAD_run_once(&pin_index_once, pin_index_init) || pin_index < 0) return 0;
    if (pin != NULL) {
        struct replica_pin *kept = OPENSSL_malloc(sizeof *kept);
        if (kept == NULL) return 0;
        memcpy(kept->sha256, pin, 32);
        kept->require_chain = require_chain;
        if (!SSL_CTX_set_ex_data(ctx, pin_index, kept)) {
            OPENSSL_free(kept);
            return 0;
        }
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, pin != NULL ? verify_with_pin : NULL);
    return 1;
}

/* The PSK table of a context, in its ex_data slot (freed with the context). */
struct replica_psk_table {
    int count;
    char **identities;
    unsigned char **keys;
    unsigned int *lengths;
};

static int psk_index = -1;
static CRYPTO_ONCE psk_index_once = CRYPTO_ONCE_STATIC_INIT;

static void psk_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    struct replica_psk_table *table = ptr;
    if (table == NULL) return;
    for (int i = 0; i < table->count; i++) {
        OPENSSL_free(table->identities[i]);
        OPENSSL_clear_free(table->keys[i], table->lengths[i]);
    }
    OPENSSL_free(table->identities);
    OPENSSL_free(table->keys);
    OPENSSL_free(table->lengths);
    OPENSSL_free(table);
}

static void psk_index_init(void) {
    psk_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, psk_table_free);
}

static unsigned int psk_server_lookup(SSL *ssl, const char *identity, unsigned char *psk, unsigned int max_psk_len) {
    struct replica_psk_table *table = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), psk_index);
    if (table == NULL || identity == NULL) return 0;
    for (int i = 0; i < table->count; i++) {
        if (strcmp(table->identities[i], identity) == 0) {
            if (table->lengths[i] > max_psk_len) return 0;
            memcpy(psk, table->keys[i], table->lengths[i]);
            return table->lengths[i];
        }
    }
    return 0;
}

int CReplicaOpenSSLShims_set_psk_table(SSL_CTX *ctx, const char *const *identities, const unsigned char *const *keys,
                                       const unsigned int *lengths, int count) {
    if (!CRYPTO_THREAD_run_once(&psk_index_once, psk_index_init) || psk_index < 0 || count < 0) return 0;
    struct replica_psk_table *table = OPENSSL_zalloc(sizeof *table);
    if (table == NULL) return 0;
    table->identities = OPENSSL_zalloc(sizeof(char *) * (size_t)(count + 1));
    table->keys = OPENSSL_zalloc(sizeof(unsigned char *) * (size_t)(count + 1));
    table->lengths = OPENSSL_zalloc(sizeof(unsigned int) * (size_t)(count + 1));
    if (table->identities == NULL || table->keys == NULL || table->lengths == NULL) {
        psk_table_free(NULL, table, NULL, 0, 0, NULL);
        return 0;
    }
    for (int i = 0; i < count; i++) {
        table->identities[i] = OPENSSL_strdup(identities[i]);
        table->keys[i] = OPENSSL_memdup(keys[i], lengths[i]);
        table->lengths[i] = lengths[i];
        table->count = i + 1;
        if (table->identities[i] == NULL || table->keys[i] == NULL) {
            psk_table_free(NULL, table, NULL, 0, 0, NULL);
            return 0;
        }
    }
    if (!SSL_CTX_set_ex_data(ctx, psk_index, table)) {
        psk_table_free(NULL, table, NULL, 0, 0, NULL);
        return 0;
    }
    SSL_CTX_set_psk_server_callback(ctx, psk_server_lookup);
    return 1;
}
