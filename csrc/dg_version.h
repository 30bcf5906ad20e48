#ifndef DG_VERSION_H
#define DG_VERSION_H
/* Kept in step with lua/dicomgcs/version.lua and the rockspec. */
#define DG_VERSION "0.1.0"
#endif
