# The embedding example: build/dicomgcs_host, a C program that embeds Lua 5.4 with the
# dicomgcs core linked in statically. Included by the top Makefile (`make embed`), or used
# on its own through examples/embed/Makefile. Needs the top Makefile's CC, ALL_CFLAGS,
# CORE_OBJ, BIND_OBJ, DEP_LIBS and BUILD.
#   EMBED_LUA_DIR  folder holding dicomgcs/*.lua, compiled into the host (default: this
#                  tree's lua/; e.g. /usr/local/share/lua/5.4 for an installed rock).
#                  $DICOMGCS_LUA_DIR overrides it at run time.
ifndef DICOMGCS_EMBED_MK
DICOMGCS_EMBED_MK := 1

EMBED_HOST    := $(BUILD)/dicomgcs_host
EMBED_LUA_DIR ?= $(CURDIR)/lua
# A host program, unlike the module, links liblua itself.
EMBED_LUA_LIBS := $(or $(shell pkg-config --libs lua5.4 2>/dev/null),-llua5.4)

.PHONY: embed
embed: $(EMBED_HOST)

$(EMBED_HOST): examples/embed/dicomgcs_host.c $(CORE_OBJ) $(BIND_OBJ) csrc/ldg.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Icsrc -DDICOMGCS_LUA_DIR='"$(EMBED_LUA_DIR)"' -o $@ $< \
	  $(CORE_OBJ) $(BIND_OBJ) $(EMBED_LUA_LIBS) $(DEP_LIBS) $(LDFLAGS)

endif
