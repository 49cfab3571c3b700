# Run at build time (cmake -P): writes INPUT as a zero-terminated byte array named NAME into
# OUTPUT, so the harness carries its kernel source (cl/bench_peak.cl) without the source tree.
file(READ ${INPUT} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUTPUT}.tmp "/* Generated from ${INPUT} by benchmarks/embed_source.cmake. */\nconst char ${NAME}[] = {${bytes}0x00};\n")
file(RENAME ${OUTPUT}.tmp ${OUTPUT})
