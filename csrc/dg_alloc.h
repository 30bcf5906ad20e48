/*
 * dg_alloc.h - the allocator every dicomgcs C object is built with.
 *
 * The function has lua_Alloc's shape, so the binding can pass
 * lua_getallocf(L) and host memory limits apply to the C core too:
 *   realloc(ud, NULL, 0, n)  allocates n bytes (NULL on failure)
 *   realloc(ud, p, old, n)   resizes
 *   realloc(ud, p, old, 0)   frees, returns NULL
 * Callers always pass the true old size. Nothing here aborts or exits.
 */
#ifndef DG_ALLOC_H
#define DG_ALLOC_H

#include <stddef.h>

typedef struct dg_allocator {
  void *(*realloc)(void *ud, void *ptr, size_t osize, size_t nsize);
  void *ud;
} dg_allocator;

/* malloc/realloc/free; a static object, never freed. */
const dg_allocator *dg_default_allocator(void);

void *dg_malloc(const dg_allocator *a, size_t n);
void *dg_realloc(const dg_allocator *a, void *p, size_t old, size_t n);
void dg_free(const dg_allocator *a, void *p, size_t n);
/* NUL-terminated copy of s (or of its first n bytes); free with dg_strfree. */
char *dg_strdup(const dg_allocator *a, const char *s);
char *dg_strndup(const dg_allocator *a, const char *s, size_t n);
void dg_strfree(const dg_allocator *a, char *s);

#endif
