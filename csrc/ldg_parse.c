/*
 * ldg_parse.c - Lua binding of the two parsers (dg_dicom, dg_multipart).
 *
 *   core.dicom_header(bytes [, is_complete]) -> table
 *     { ok = bool, status = "ok"|"not_dicom"|"no_preamble"|"truncated"|"bad_meta"|
 *       "bad_vr_length"|"missing_uid"|"bad_uid"|"need_more_data",
 *       reason = string|nil, warning = string|nil (a defect the import should accept),
 *       offset = int, consumed = int, need = int|nil (need_more_data),
 *       transfer_syntax =, study_uid =, series_uid =, sop_instance_uid =, sop_class_uid =,
 *       meta_sop_instance_uid =, meta_sop_class_uid = (strings or nil),
 *       dataset_inspected = bool (false for the deflated transfer syntax) }
 *     is_complete (default false): bytes is the whole file, so running out of
 *     bytes is "truncated"/"missing_uid" instead of "need_more_data".
 *
 *   core.multipart_boundary(content_type) -> boundary | nil, err
 *
 *   core.multipart_parser(content_type_or_boundary) -> parser | nil, err
 *     The argument is a Content-Type value when it starts with "multipart/"
 *     (case-insensitive), else the bare boundary. A bad one returns nil, err.
 *   parser:feed(chunk) -> events | nil, err, events_before_the_error
 *     events is a list, in stream order, of
 *       { type = "begin", part = n, headers = { ["content-type"] = "...", ... },
 *         content_type = s|nil, content_length = int|nil, content_location = s|nil }
 *       { type = "data", part = n, data = "bytes" }   (adjacent slices of one feed merged)
 *       { type = "end", part = n }
 *       { type = "done" }                               (close delimiter seen)
 *     Header names are lower-cased; repeated fields are joined by ", ".
 *     Errors (malformed framing, oversized headers, Content-Length mismatch)
 *     are sticky: err is "multipart: <message> at byte N".
 *   parser:finish() -> true | nil, err      (err says where a truncated stream ended)
 *   parser:close()                          (also __gc and __close; idempotent)
 *   Using a closed parser raises. A parser holds no C resource: the state and
 *   its 16 KiB header buffer live inside the userdata.
 */
#include <lauxlib.h>
#include <string.h>

#include "ldg.h"
#include "dg_dicom.h"
#include "dg_multipart.h"

#define LDG_MULTIPART "dicomgcs.MultipartParser"

typedef struct {
  int closed;
  int busy; /* set while feed() builds Lua values; still set after a raise = unusable */
  dg_mp mp;
  char hdr[DG_MP_DEFAULT_HEADER_BYTES];
} ldg_mp;

static void set_str(lua_State *L, const char *key, const char *v) {
  if (v && v[0]) {
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
  }
}

static int l_dicom_header(lua_State *L) {
  size_t len;
  const char *bytes = luaL_checklstring(L, 1, &len);
  int complete = lua_toboolean(L, 2);
  dg_dicom_header h;
  dg_dicom_read_header((const unsigned char *)bytes, len, complete, &h);
  lua_createtable(L, 0, 16);
  lua_pushboolean(L, h.status == DG_DICOM_OK);
  lua_setfield(L, -2, "ok");
  lua_pushstring(L, dg_dicom_status_name(h.status));
  lua_setfield(L, -2, "status");
  set_str(L, "reason", h.reason);
  set_str(L, "warning", h.warning);
  lua_pushinteger(L, (lua_Integer)h.offset);
  lua_setfield(L, -2, "offset");
  lua_pushinteger(L, (lua_Integer)h.consumed);
  lua_setfield(L, -2, "consumed");
  if (h.status == DG_DICOM_NEED_MORE_DATA) {
    lua_pushinteger(L, (lua_Integer)h.need);
    lua_setfield(L, -2, "need");
  }
  lua_pushboolean(L, h.dataset_inspected);
  lua_setfield(L, -2, "dataset_inspected");
  set_str(L, "transfer_syntax", h.transfer_syntax);
  set_str(L, "study_uid", h.study_uid);
  set_str(L, "series_uid", h.series_uid);
  set_str(L, "sop_instance_uid", h.sop_instance_uid);
  set_str(L, "sop_class_uid", h.sop_class_uid);
  set_str(L, "meta_sop_instance_uid", h.meta_sop_instance_uid);
  set_str(L, "meta_sop_class_uid", h.meta_sop_class_uid);
  return 1;
}

static int l_multipart_boundary(lua_State *L) {
  size_t len, blen;
  const char *ct = luaL_checklstring(L, 1, &len);
  char b[DG_MP_BOUNDARY_MAX + 1];
  if (dg_mp_boundary_from_content_type(ct, len, b, sizeof b, &blen) != DG_MP_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, "multipart: no valid boundary parameter in a multipart/* content type");
    return 2;
  }
  lua_pushlstring(L, b, blen);
  return 1;
}

static int starts_multipart(const char *s, size_t len) {
  static const char pre[] = "multipart/";
  size_t i;
  while (len > 0 && (*s == ' ' || *s == '\t')) { s++; len--; }
  if (len < sizeof pre - 1) return 0;
  for (i = 0; i < sizeof pre - 1; i++) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
    if (c != pre[i]) return 0;
  }
  return 1;
}

static int l_multipart_parser(lua_State *L) {
  size_t len, blen;
  const char *arg = luaL_checklstring(L, 1, &len);
  char b[DG_MP_BOUNDARY_MAX + 1];
  ldg_mp *u;
  if (starts_multipart(arg, len)) {
    if (dg_mp_boundary_from_content_type(arg, len, b, sizeof b, &blen) != DG_MP_OK) {
      luaL_pushfail(L);
      lua_pushstring(L, "multipart: no valid boundary parameter in the content type");
      return 2;
    }
  } else {
    if (len > DG_MP_BOUNDARY_MAX) {
      luaL_pushfail(L);
      lua_pushliteral(L, "multipart: boundary longer than 70 characters");
      return 2;
    }
    memcpy(b, arg, len);
    blen = len;
  }
  u = lua_newuserdatauv(L, sizeof *u, 0);
  u->closed = 1; /* closed until initialised */
  u->busy = 0;
  luaL_setmetatable(L, LDG_MULTIPART);
  if (dg_mp_init(&u->mp, b, blen, u->hdr, sizeof u->hdr) != DG_MP_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "multipart: %s", dg_mp_error(&u->mp));
    return 2;
  }
  u->closed = 0;
  return 1;
}

static ldg_mp *check_open(lua_State *L) {
  ldg_mp *u = luaL_checkudata(L, 1, LDG_MULTIPART);
  if (u->closed) luaL_error(L, "attempt to use a closed multipart parser");
  if (u->busy) luaL_error(L, "multipart parser unusable: an error was raised inside feed()");
  return u;
}

static const char *event_name(dg_mp_event_type t) {
  switch (t) {
    case DG_MP_EV_BEGIN: return "begin";
    case DG_MP_EV_DATA: return "data";
    case DG_MP_EV_END: return "end";
    case DG_MP_EV_DONE: return "done";
    default: return "none";
  }
}

/* Push the headers table for a BEGIN event: lower-case names, repeats joined by ", ". */
static void push_headers(lua_State *L, const dg_mp_event *ev) {
  size_t i, k;
  char name[128];
  lua_createtable(L, 0, (int)ev->nheaders);
  for (i = 0; i < ev->nheaders; i++) {
    const dg_mp_header *h = &ev->headers[i];
    size_t n = h->name_len < sizeof name ? h->name_len : sizeof name - 1;
    for (k = 0; k < n; k++) {
      char c = h->name[k];
      name[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    name[n] = '\0';
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushlstring(L, h->value, h->value_len);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushlstring(L, h->value, h->value_len);
    }
    lua_setfield(L, -2, name);
  }
}

static int l_mp_feed(lua_State *L) {
  ldg_mp *u = check_open(L);
  size_t len, off = 0, used;
  const unsigned char *buf = (const unsigned char *)luaL_checklstring(L, 2, &len);
  lua_Integer n = 0;
  int last_data = 0;
  dg_mp_event ev;
  dg_mp_status st = DG_MP_OK;

  lua_newtable(L); /* events */
  u->busy = 1;
  for (;;) {
    st = dg_mp_next(&u->mp, buf + off, len - off, &used, &ev);
    if (st != DG_MP_OK) break;
    off += used;
    if (ev.type == DG_MP_EV_NONE) break;
    if (ev.type == DG_MP_EV_DATA && last_data) { /* merge with the previous data event */
      lua_geti(L, -1, n);
      lua_getfield(L, -1, "data");
      lua_pushlstring(L, (const char *)ev.data, ev.len);
      lua_concat(L, 2);
      lua_setfield(L, -2, "data");
      lua_pop(L, 1);
      continue;
    }
    lua_createtable(L, 0, 6);
    lua_pushstring(L, event_name(ev.type));
    lua_setfield(L, -2, "type");
    if (ev.type != DG_MP_EV_DONE) {
      lua_pushinteger(L, (lua_Integer)ev.part);
      lua_setfield(L, -2, "part");
    }
    if (ev.type == DG_MP_EV_DATA) {
      lua_pushlstring(L, (const char *)ev.data, ev.len);
      lua_setfield(L, -2, "data");
    } else if (ev.type == DG_MP_EV_BEGIN) {
      push_headers(L, &ev);
      lua_getfield(L, -1, "content-type");
      lua_setfield(L, -3, "content_type");
      lua_getfield(L, -1, "content-location");
      lua_setfield(L, -3, "content_location");
      lua_setfield(L, -2, "headers");
      if (ev.content_length >= 0) {
        lua_pushinteger(L, (lua_Integer)ev.content_length);
        lua_setfield(L, -2, "content_length");
      }
    }
    last_data = ev.type == DG_MP_EV_DATA;
    lua_seti(L, -2, ++n);
  }
  u->busy = 0;
  if (st != DG_MP_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "multipart: %s", dg_mp_error(&u->mp));
    lua_rotate(L, -3, 2); /* nil, err, events */
    return 3;
  }
  return 1;
}

static int l_mp_finish(lua_State *L) {
  ldg_mp *u = check_open(L);
  if (dg_mp_finish(&u->mp) != DG_MP_OK) {
    luaL_pushfail(L);
    lua_pushfstring(L, "multipart: %s", dg_mp_error(&u->mp));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_mp_close(lua_State *L) {
  ldg_mp *u = luaL_checkudata(L, 1, LDG_MULTIPART);
  u->closed = 1;
  return 0;
}

static int l_mp_tostring(lua_State *L) {
  ldg_mp *u = luaL_checkudata(L, 1, LDG_MULTIPART);
  if (u->closed) lua_pushliteral(L, LDG_MULTIPART " (closed)");
  else lua_pushfstring(L, LDG_MULTIPART " (%p)", (void *)u);
  return 1;
}

static const luaL_Reg mp_methods[] = {
  {"feed", l_mp_feed},
  {"finish", l_mp_finish},
  {"close", l_mp_close},
  {NULL, NULL}
};

static const luaL_Reg mp_meta[] = {
  {"__gc", l_mp_close},
  {"__close", l_mp_close},
  {"__tostring", l_mp_tostring},
  {NULL, NULL}
};

static const luaL_Reg parse_functions[] = {
  {"dicom_header", l_dicom_header},
  {"multipart_boundary", l_multipart_boundary},
  {"multipart_parser", l_multipart_parser},
  {NULL, NULL}
};

void ldg_register_parsers(lua_State *L) {
  ldg_define_class(L, LDG_MULTIPART, mp_meta, mp_methods);
  luaL_setfuncs(L, parse_functions, 0);
}
