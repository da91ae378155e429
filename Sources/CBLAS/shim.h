// OpenBLAS's CBLAS interface (pkg-config `openblas` puts its include directory on the path).
#include <cblas.h>
