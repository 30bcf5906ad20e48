/* dg_token.c - see dg_token.h */
#include <string.h>
#include "dg_token.h"

void dg_token_init(dg_token *t, const dg_allocator *a) {
  memset(t, 0, sizeof *t);
  dg_buf_init(&t->value, a, 0);
}

void dg_token_free(dg_token *t) { dg_buf_wipe(&t->value); }

void dg_token_clear(dg_token *t) {
  const dg_allocator *a = t->value.a;
  dg_buf_wipe(&t->value);
  dg_buf_init(&t->value, a, 0);
  t->expiry_ms = t->refresh_ms = 0;
}

int64_t dg_token_margin_ms(int64_t lifetime_ms) {
  int64_t m = lifetime_ms / 2;
  return m < DG_TOKEN_MARGIN_S * 1000 ? m : DG_TOKEN_MARGIN_S * 1000;
}

int dg_token_set(dg_token *t, const char *tok, size_t len, double expires_in_s,
                 int64_t fetched_ms, int is_static) {
  if (len == 0) return -1;
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)tok[i] < 0x21 || (unsigned char)tok[i] > 0x7e) return -1;
  dg_buf fresh;
  dg_buf_init(&fresh, t->value.a, 0);
  if (dg_buf_append(&fresh, tok, len) != 0) { dg_buf_wipe(&fresh); return -1; }
  dg_buf_wipe(&t->value);
  t->value = fresh;
  if (!(expires_in_s > 0)) expires_in_s = 3600;
  if (expires_in_s > 1e7) expires_in_s = 1e7;
  int64_t life = (int64_t)(expires_in_s * 1000);
  t->expiry_ms = fetched_ms + life;
  t->refresh_ms = t->expiry_ms - (is_static ? 0 : dg_token_margin_ms(life));
  t->gen++;
  return 0;
}

int dg_token_fresh(const dg_token *t, int64_t now_ms) {
  return t->value.len > 0 && now_ms < t->refresh_ms;
}

int dg_token_valid(const dg_token *t, int64_t now_ms) {
  return t->value.len > 0 && now_ms < t->expiry_ms;
}

void dg_token_postpone(dg_token *t, int64_t now_ms) {
  if (!dg_token_valid(t, now_ms)) return;
  int64_t wait = (t->expiry_ms - now_ms) / 4;
  if (wait > 10000) wait = 10000;
  t->refresh_ms = now_ms + wait;
}
