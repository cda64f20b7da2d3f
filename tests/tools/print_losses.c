/* print_losses RUN.h5: the training loss and gradient-norm rows and the
 * validation loss rows of a run file, one "<group>/<column> <step> <value
 * as a hex float> <the same in decimal>" line each, so two runs can be
 * compared bit for bit with diff (tests/compare_revisions.sh). */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

static int print_column(hid_t f, const char *group, const char *col)
{
    char sp[64], lp[64];
    snprintf(sp, sizeof sp, "/%s/step", group);
    snprintf(lp, sizeof lp, "/%s/%s", group, col);
    if (H5Lexists(f, lp, H5P_DEFAULT) <= 0) return 0;
    hid_t ds = H5Dopen2(f, lp, H5P_DEFAULT), dstep = H5Dopen2(f, sp, H5P_DEFAULT);
    if (ds < 0 || dstep < 0) return 1;
    hid_t space = H5Dget_space(ds);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    double *loss = malloc((size_t)(n > 0 ? n : 1) * sizeof *loss);
    long long *step = malloc((size_t)(n > 0 ? n : 1) * sizeof *step);
    int bad = H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, loss) < 0 ||
              H5Dread(dstep, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, step) < 0;
    for (hssize_t i = 0; i < n && !bad; i++)
        printf("%s/%s %lld %a %.17g\n", group, col, step[i], loss[i], loss[i]);
    free(loss), free(step);
    H5Sclose(space), H5Dclose(ds), H5Dclose(dstep);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: print_losses RUN.h5\n");
        return 2;
    }
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "print_losses: cannot open %s\n", argv[1]);
        return 1;
    }
    int bad = print_column(f, "train", "loss") | print_column(f, "train", "grad_norm") |
              print_column(f, "val", "loss");
    H5Fclose(f);
    if (bad) fprintf(stderr, "print_losses: %s lacks /train or /val step and loss\n", argv[1]);
    return bad;
}
