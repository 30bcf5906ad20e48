/* dg_alloc.c - see dg_alloc.h */
#include <stdlib.h>
#include <string.h>

#include "dg_alloc.h"

static void *default_realloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) { free(ptr); return NULL; }
  return realloc(ptr, nsize);
}

static const dg_allocator default_allocator = { default_realloc, NULL };

const dg_allocator *dg_default_allocator(void) { return &default_allocator; }

void *dg_malloc(const dg_allocator *a, size_t n) {
  if (n == 0) n = 1;
  return a->realloc(a->ud, NULL, 0, n);
}

void *dg_realloc(const dg_allocator *a, void *p, size_t old, size_t n) {
  if (n == 0) n = 1;
  if (p == NULL) return a->realloc(a->ud, NULL, 0, n);
  return a->realloc(a->ud, p, old ? old : 1, n);
}

void dg_free(const dg_allocator *a, void *p, size_t n) {
  if (p) a->realloc(a->ud, p, n ? n : 1, 0);
}

char *dg_strndup(const dg_allocator *a, const char *s, size_t n) {
  char *d = dg_malloc(a, n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *dg_strdup(const dg_allocator *a, const char *s) { return dg_strndup(a, s, strlen(s)); }

void dg_strfree(const dg_allocator *a, char *s) {
  if (s) dg_free(a, s, strlen(s) + 1);
}
