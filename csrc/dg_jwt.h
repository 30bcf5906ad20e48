/*
 * dg_jwt.h - RS256 JSON Web Token signing (RFC 7515/7518) through OpenSSL EVP.
 *
 * The caller supplies the header and claims JSON verbatim; this module only
 * base64url-encodes them, signs "b64(header).b64(claims)" with
 * RSASSA-PKCS1-v1_5 / SHA-256 and appends the signature.
 *
 * Secrets: the PEM text is read in place (never copied by this module);
 * OpenSSL's decoded key is freed with EVP_PKEY_free. Error messages never
 * contain key bytes, only a fixed description plus OpenSSL's reason string.
 * Thread-safe (no shared state); no Lua.
 */
#ifndef DG_JWT_H
#define DG_JWT_H

#include <stddef.h>

typedef enum {
  DG_JWT_OK = 0,
  DG_JWT_EARG,    /* empty PEM, header or claims */
  DG_JWT_EKEY,    /* PEM could not be parsed as a private key */
  DG_JWT_ENOTRSA, /* a private key, but not RSA (EC, Ed25519, RSA-PSS, ...) */
  DG_JWT_ESIGN,   /* OpenSSL failed while signing */
  DG_JWT_ENOMEM
} dg_jwt_status;

/* Sign. On DG_JWT_OK *out receives a NUL-terminated malloc'd JWT of length
 * *out_len, owned by the caller, who releases it with dg_jwt_free (which
 * wipes it: a signed assertion is a credential for its lifetime). On failure
 * *out is NULL and err (if non-NULL) receives a message of at most errlen-1
 * bytes that never includes key material. */
dg_jwt_status dg_jwt_sign_rs256(const char *pem, size_t pem_len,
                                const char *header_json, size_t header_len,
                                const char *claims_json, size_t claims_len,
                                char **out, size_t *out_len,
                                char *err, size_t errlen);

/* Wipe (OPENSSL_cleanse) and free a JWT returned by dg_jwt_sign_rs256. NULL is fine. */
void dg_jwt_free(char *jwt, size_t len);

#endif
