std = "lua54"
max_line_length = 150
include_files = { "lua/", "bin/dicomgcs", "spec/", "examples/", "scripts/gen-rockspec", "scripts/soak.lua", ".busted", ".luacheckrc" }
files["spec/**/*.lua"] = { std = "+busted" }
files["spec/helper.lua"] = { std = "+busted" }
