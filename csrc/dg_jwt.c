/* dg_jwt.c - RS256 JWT signing; see dg_jwt.h. */
#include "dg_jwt.h"
#include "dg_base64.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* Never let OpenSSL prompt on the terminal for an encrypted key's passphrase. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf; (void)size; (void)rwflag; (void)u;
  return -1;
}

/* Message = fixed text + the reason of the earliest queued OpenSSL error
 * (reason strings are static library text, never data). Clears the queue. */
static void set_err(char *err, size_t errlen, const char *what) {
  unsigned long e = ERR_get_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  if (err && errlen) {
    if (reason) snprintf(err, errlen, "%s (OpenSSL: %s)", what, reason);
    else snprintf(err, errlen, "%s", what);
  }
  ERR_clear_error();
}

void dg_jwt_free(char *jwt, size_t len) {
  if (!jwt) return;
  OPENSSL_cleanse(jwt, len);
  free(jwt);
}

dg_jwt_status dg_jwt_sign_rs256(const char *pem, size_t pem_len,
                                const char *header_json, size_t header_len,
                                const char *claims_json, size_t claims_len,
                                char **out, size_t *out_len,
                                char *err, size_t errlen) {
  dg_jwt_status st = DG_JWT_OK;
  BIO *bio = NULL;
  EVP_PKEY *pkey = NULL;
  EVP_MD_CTX *ctx = NULL;
  unsigned char *sig = NULL;
  size_t sig_len = 0, hb, cb, sb, total, pos;
  char *buf = NULL;

  if (out) *out = NULL;
  if (out_len) *out_len = 0;
  if (err && errlen) err[0] = '\0';
  ERR_clear_error();
  if (!out || !pem || pem_len == 0 || !header_json || header_len == 0 || !claims_json || claims_len == 0) {
    set_err(err, errlen, "empty private key, header or claims");
    return DG_JWT_EARG;
  }
  if (pem_len > 0x7fffffff) {
    set_err(err, errlen, "private key too large");
    return DG_JWT_EARG;
  }

  bio = BIO_new_mem_buf(pem, (int)pem_len);
  if (!bio) { st = DG_JWT_ENOMEM; set_err(err, errlen, "out of memory"); goto done; }
  pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
  if (!pkey) {
    st = DG_JWT_EKEY;
    set_err(err, errlen, "private_key is not a PEM-encoded unencrypted private key");
    goto done;
  }
  if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA) {
    st = DG_JWT_ENOTRSA;
    set_err(err, errlen, "private_key is not an RSA key (RS256 needs RSA)");
    goto done;
  }

  hb = dg_b64url_encoded_len(header_len);
  cb = dg_b64url_encoded_len(claims_len);
  sb = dg_b64url_encoded_len((size_t)EVP_PKEY_get_size(pkey));
  total = hb + 1 + cb + 1 + sb;
  buf = malloc(total + 1);
  if (!buf) { st = DG_JWT_ENOMEM; set_err(err, errlen, "out of memory"); goto done; }
  pos = dg_b64url_encode((const unsigned char *)header_json, header_len, buf);
  buf[pos++] = '.';
  pos += dg_b64url_encode((const unsigned char *)claims_json, claims_len, buf + pos);

  ctx = EVP_MD_CTX_new();
  if (!ctx) { st = DG_JWT_ENOMEM; set_err(err, errlen, "out of memory"); goto done; }
  /* Default RSA padding for DigestSign is PKCS#1 v1.5: what RS256 means. */
  if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) != 1 ||
      EVP_DigestSignUpdate(ctx, buf, pos) != 1 ||
      EVP_DigestSignFinal(ctx, NULL, &sig_len) != 1) {
    st = DG_JWT_ESIGN; set_err(err, errlen, "RS256 signing failed"); goto done;
  }
  sig = malloc(sig_len ? sig_len : 1);
  if (!sig) { st = DG_JWT_ENOMEM; set_err(err, errlen, "out of memory"); goto done; }
  if (EVP_DigestSignFinal(ctx, sig, &sig_len) != 1) {
    st = DG_JWT_ESIGN; set_err(err, errlen, "RS256 signing failed"); goto done;
  }
  if (dg_b64url_encoded_len(sig_len) > sb) {   /* cannot happen; be safe */
    st = DG_JWT_ESIGN; set_err(err, errlen, "unexpected signature length"); goto done;
  }
  buf[pos++] = '.';
  pos += dg_b64url_encode(sig, sig_len, buf + pos);
  *out = buf;
  if (out_len) *out_len = pos;
  buf = NULL;

done:
  if (buf) dg_jwt_free(buf, total + 1);
  if (sig) { OPENSSL_cleanse(sig, sig_len); free(sig); }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  BIO_free(bio);
  ERR_clear_error();
  return st;
}
