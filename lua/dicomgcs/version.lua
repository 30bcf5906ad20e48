-- Kept in step with csrc/dg_version.h and rockspec/.
return "0.1.0"
