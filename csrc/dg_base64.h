/*
 * dg_base64.h - base64url without padding (RFC 7515 appendix C), as JWTs use.
 *
 * No Lua, no allocation beyond what the caller asks for. Thread-safe.
 */
#ifndef DG_BASE64_H
#define DG_BASE64_H

#include <stddef.h>

/* Length of the unpadded base64url encoding of n bytes (no terminator). */
size_t dg_b64url_encoded_len(size_t n);

/* Encode n bytes of src into dst, which must hold dg_b64url_encoded_len(n)+1
 * bytes; writes a NUL terminator and returns the encoded length. */
size_t dg_b64url_encode(const unsigned char *src, size_t n, char *dst);

/* Decode unpadded (or padded) base64url text. dst must hold at least
 * (n / 4 + 1) * 3 bytes. Returns the decoded length, or (size_t)-1 on a
 * character outside the alphabet or an impossible length. */
size_t dg_b64url_decode(const char *src, size_t n, unsigned char *dst);

#endif
