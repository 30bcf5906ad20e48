/*
 * dg_token.h - the access-token cache: one rule for when a token is refreshed.
 *
 * A token fetched at time F with a lifetime of L seconds (the "expires_in" the
 * token endpoint returned) expires at F + L and is refreshed from
 * F + L - min(DG_TOKEN_MARGIN_S, L / 2) on: 225 s ahead of expiry, as Google's
 * auth libraries do (google-auth-library-python's REFRESH_THRESHOLD), and
 * halfway through a token shorter than 450 s, so short test tokens work.
 * A token given as "static" (a fixed token the caller supplied) is refreshed
 * only at expiry. When a refresh fails while the old token is still valid, it
 * keeps being served and the next try waits min(10 s, a quarter of what is left).
 *
 * The cache owns a copy of the token bytes and wipes them (OPENSSL_cleanse)
 * when replaced or freed. Times are milliseconds on the caller's monotonic
 * clock. Plain C, no Lua; single-threaded. The engine (dg_engine.c) keeps
 * one for its transfers; the binding exposes the same cache to the Lua
 * auth layer (core.token_cache), so there is one rule everywhere.
 */
#ifndef DG_TOKEN_H
#define DG_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "dg_alloc.h"
#include "dg_buf.h"

#define DG_TOKEN_MARGIN_S 225

typedef struct dg_token {
  dg_buf value;                  /* empty: no token */
  int64_t expiry_ms, refresh_ms;
  int gen;                       /* incremented by every dg_token_set */
} dg_token;

/* a must outlive the cache. */
void dg_token_init(dg_token *t, const dg_allocator *a);
/* Wipe and free the bytes (the cache may be reused after dg_token_init). */
void dg_token_free(dg_token *t);
/* Forget the token (wiped); gen is kept. */
void dg_token_clear(dg_token *t);
/* Store a token fetched at fetched_ms with expires_in_s seconds of life (<= 0: 3600).
 * 0, or -1 if the token is empty, holds characters not allowed in a header
 * (anything outside 0x21..0x7e), or memory ran out; the old token is then kept. */
int dg_token_set(dg_token *t, const char *tok, size_t len, double expires_in_s,
                 int64_t fetched_ms, int is_static);
/* 1 when there is a token and now is before its refresh time. */
int dg_token_fresh(const dg_token *t, int64_t now_ms);
/* 1 when there is a token and now is before its expiry. */
int dg_token_valid(const dg_token *t, int64_t now_ms);
/* A refresh failed at now_ms: serve the old token a little longer (no-op if it expired). */
void dg_token_postpone(dg_token *t, int64_t now_ms);
/* The margin before expiry at which a token of lifetime_ms is refreshed. */
int64_t dg_token_margin_ms(int64_t lifetime_ms);

#endif
