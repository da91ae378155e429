// liblz4's block API (pkg-config `liblz4`).
#include <lz4.h>
