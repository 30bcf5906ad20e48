/*
 * test_jwt.c - unit tests for dg_base64 and dg_jwt (TAP output).
 *
 * Keys are generated here with OpenSSL; none is committed. Signatures are
 * checked independently with EVP_DigestVerify.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "dg_base64.h"
#include "dg_jwt.h"
#include "tap.h"

/* PEM text of pkey: PKCS#8 when traditional == 0, else the legacy form
 * (PKCS#1 "BEGIN RSA PRIVATE KEY" for RSA). With cipher, encrypted. */
static char *pem_of(EVP_PKEY *pkey, int traditional, const EVP_CIPHER *cipher) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL, *copy;
  long n;
  int rc;
  if (traditional) rc = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL);
  else rc = PEM_write_bio_PrivateKey(bio, pkey, cipher, cipher ? (unsigned char *)"pw123456" : NULL,
                                    cipher ? 8 : 0, NULL, NULL);
  if (rc != 1) { BIO_free(bio); return NULL; }
  n = BIO_get_mem_data(bio, &data);
  copy = malloc((size_t)n + 1);
  memcpy(copy, data, (size_t)n);
  copy[n] = '\0';
  BIO_free(bio);
  return copy;
}

static int b64_eq(const char *in, const char *want) {
  char buf[64];
  size_t n = dg_b64url_encode((const unsigned char *)in, strlen(in), buf);
  return n == strlen(want) && strcmp(buf, want) == 0 && dg_b64url_encoded_len(strlen(in)) == n;
}

static int verify_jwt(EVP_PKEY *pkey, const char *jwt) {
  const char *dot2 = strrchr(jwt, '.');
  unsigned char sig[1024];
  size_t sig_len;
  EVP_MD_CTX *ctx;
  int rc;
  if (!dot2) return 0;
  sig_len = dg_b64url_decode(dot2 + 1, strlen(dot2 + 1), sig);
  if (sig_len == (size_t)-1) return 0;
  ctx = EVP_MD_CTX_new();
  rc = EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
       EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)jwt, (size_t)(dot2 - jwt)) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

/* The decoded segment idx (0 header, 1 claims) equals want. */
static int segment_is(const char *jwt, int idx, const char *want) {
  const char *start = jwt, *end;
  unsigned char buf[1024];
  size_t n;
  int i;
  for (i = 0; i < idx; i++) start = strchr(start, '.') + 1;
  end = strchr(start, '.');
  if (!end) return 0;
  n = dg_b64url_decode(start, (size_t)(end - start), buf);
  return n == strlen(want) && memcmp(buf, want, n) == 0;
}

/* err mentions no piece of the PEM body (any 12-byte window of a base64 line). */
static int leaks_nothing(const char *err, const char *pem) {
  const char *line = strchr(pem, '\n');
  while (line && line[1]) {
    const char *next = strchr(line + 1, '\n');
    size_t len = next ? (size_t)(next - line - 1) : strlen(line + 1);
    size_t off;
    if (line[1] != '-') {
      for (off = 0; off + 12 <= len; off += 4) {
        char win[13];
        memcpy(win, line + 1 + off, 12);
        win[12] = '\0';
        if (strstr(err, win)) return 0;
      }
    }
    line = next;
  }
  return 1;
}

int main(void) {
  const char *hdr = "{\"alg\":\"RS256\",\"typ\":\"JWT\",\"kid\":\"k1\"}";
  const char *claims = "{\"iss\":\"sa@p.iam.gserviceaccount.com\",\"scope\":\"https://www.googleapis.com/auth/cloud-platform\","
                       "\"aud\":\"http://127.0.0.1:1/token\",\"iat\":1700000000,\"exp\":1700003600}";
  EVP_PKEY *rsa = EVP_RSA_gen(2048);
  EVP_PKEY *other = EVP_RSA_gen(2048);
  EVP_PKEY *ec = EVP_EC_gen("P-256");
  char *pem8, *pem1, *pem_ec, *pem_enc;
  char *jwt = NULL;
  size_t jwt_len = 0;
  char err[256];
  dg_jwt_status st;
  unsigned char dec[64];
  size_t n;

  printf("TAP version 13\n");

  /* base64url: RFC 4648 test vectors, unpadded, URL alphabet */
  ok(b64_eq("", "") && b64_eq("f", "Zg") && b64_eq("fo", "Zm8") && b64_eq("foo", "Zm9v") &&
     b64_eq("foob", "Zm9vYg") && b64_eq("fooba", "Zm9vYmE") && b64_eq("foobar", "Zm9vYmFy"),
     "base64url encodes the RFC 4648 vectors without padding");
  ok(b64_eq("\xfb\xff\xbf", "-_-_"), "base64url uses - and _");
  n = dg_b64url_decode("Zm9vYmE", 7, dec);
  ok(n == 5 && memcmp(dec, "fooba", 5) == 0, "base64url decodes unpadded text");
  n = dg_b64url_decode("Zm9vYmE=", 8, dec);
  ok(n == 5 && memcmp(dec, "fooba", 5) == 0, "base64url decode tolerates padding");
  ok(dg_b64url_decode("Zm9v!", 5, dec) == (size_t)-1 && dg_b64url_decode("Z", 1, dec) == (size_t)-1,
     "base64url decode rejects bad characters and lengths");

  if (!rsa || !other || !ec) { printf("Bail out! key generation failed\n"); return 1; }
  pem8 = pem_of(rsa, 0, NULL);
  pem1 = pem_of(rsa, 1, NULL);
  pem_ec = pem_of(ec, 0, NULL);
  pem_enc = pem_of(rsa, 0, EVP_aes_128_cbc());
  ok(pem8 && strstr(pem8, "BEGIN PRIVATE KEY") && pem1 && strstr(pem1, "BEGIN RSA PRIVATE KEY") &&
     pem_ec && pem_enc && strstr(pem_enc, "ENCRYPTED"), "test keys generated");

  /* PKCS#8, the service-account file format */
  st = dg_jwt_sign_rs256(pem8, strlen(pem8), hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_OK && jwt && jwt_len == strlen(jwt), "signs with a PKCS#8 RSA key");
  ok(jwt && strchr(jwt, '=') == NULL && strchr(jwt, '+') == NULL && strchr(jwt, '/') == NULL,
     "the JWT is unpadded base64url");
  ok(jwt && segment_is(jwt, 0, hdr) && segment_is(jwt, 1, claims), "header and claims are carried verbatim");
  ok(jwt && verify_jwt(rsa, jwt), "EVP_DigestVerify accepts the signature with the public key");
  ok(jwt && !verify_jwt(other, jwt), "another key's public half rejects it");
  if (jwt) {
    char *tampered = strdup(jwt);
    char *p = strchr(tampered, '.') + 3;
    *p = (*p == 'A') ? 'B' : 'A';
    ok(!verify_jwt(rsa, tampered), "a tampered payload fails verification");
    free(tampered);
  } else ok(0, "a tampered payload fails verification");
  {
    /* RS256 with PKCS#1 v1.5 is deterministic: same input, same JWT */
    char *again = NULL;
    size_t again_len = 0;
    st = dg_jwt_sign_rs256(pem8, strlen(pem8), hdr, strlen(hdr), claims, strlen(claims), &again, &again_len, err, sizeof err);
    ok(st == DG_JWT_OK && jwt && again && strcmp(jwt, again) == 0, "RS256 signatures are deterministic (PKCS#1 v1.5)");
    dg_jwt_free(again, again_len + 1);
  }
  dg_jwt_free(jwt, jwt_len + 1);
  jwt = NULL;

  /* PKCS#1 */
  st = dg_jwt_sign_rs256(pem1, strlen(pem1), hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_OK && jwt && verify_jwt(rsa, jwt), "signs with a PKCS#1 RSA key");
  dg_jwt_free(jwt, jwt_len + 1);
  jwt = NULL;

  /* EC key: rejected, named, no key bytes */
  st = dg_jwt_sign_rs256(pem_ec, strlen(pem_ec), hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_ENOTRSA && jwt == NULL && strstr(err, "not an RSA key") != NULL, "an EC key is rejected as not RSA");
  ok(leaks_nothing(err, pem_ec) && strstr(err, "PRIVATE") == NULL, "the non-RSA error carries no key material");

  /* garbage and encrypted keys: rejected without prompting */
  st = dg_jwt_sign_rs256("not a key", 9, hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_EKEY && jwt == NULL && strstr(err, "PEM") != NULL, "garbage is rejected as an unparsable key");
  {
    char *trunc = strdup(pem8);
    trunc[strlen(trunc) / 2] = '\0';
    st = dg_jwt_sign_rs256(trunc, strlen(trunc), hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
    ok(st == DG_JWT_EKEY && leaks_nothing(err, pem8), "a truncated key is rejected, error carries no key material");
    free(trunc);
  }
  st = dg_jwt_sign_rs256(pem_enc, strlen(pem_enc), hdr, strlen(hdr), claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_EKEY && jwt == NULL, "an encrypted key is rejected without a passphrase prompt");
  st = dg_jwt_sign_rs256(pem8, strlen(pem8), "", 0, claims, strlen(claims), &jwt, &jwt_len, err, sizeof err);
  ok(st == DG_JWT_EARG && jwt == NULL, "an empty header is an argument error");
  ok(ERR_peek_error() == 0, "the OpenSSL error queue is left empty");

  free(pem8); free(pem1); free(pem_ec); free(pem_enc);
  EVP_PKEY_free(rsa); EVP_PKEY_free(other); EVP_PKEY_free(ec);
  return tap_done();
}
