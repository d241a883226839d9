#include "CKernels.h"
#include <stdlib.h>

/* LAPACK (shipped inside OpenBLAS), Fortran calling convention, column-major. */
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda,
             double *s, double *u, const int *ldu, double *vt, const int *ldvt, double *work,
             const int *lwork, int *info);

int sy_svd(int m, int n, double *a, double *s, double *u, double *vt) {
    int k = m < n ? m : n, lwork = -1, info = 0;
    double query;
    dgesvd_("S", "S", &m, &n, a, &m, s, u, &m, vt, &k, &query, &lwork, &info);
    if (info != 0) return info;
    lwork = (int)query;
    double *work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    if (!work) return -1000;
    dgesvd_("S", "S", &m, &n, a, &m, s, u, &m, vt, &k, work, &lwork, &info);
    free(work);
    return info;
}
