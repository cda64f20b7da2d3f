/* h5_digest FILE.h5 [--skip NAME]...: every group, dataset and attribute of
 * an HDF5 file as text, in name order, integers in decimal and floats as
 * hex floats (every bit shown), so two files can be compared bit for bit
 * with diff (tests/same_at_ranks.sh). --skip leaves out the attributes and
 * datasets of that name (timings, which differ between runs). A type it
 * cannot print fails the tool rather than being passed over. */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char **skips;
static int n_skips;

static int skipped(const char *name)
{
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    for (int i = 0; i < n_skips; i++)
        if (!strcmp(base, skips[i])) return 1;
    return 0;
}

/* The values of a dataset (attr < 0) or an attribute (attr >= 0), one line. */
static int print_values(const char *label, hid_t obj, hid_t attr)
{
    hid_t ftype = attr >= 0 ? H5Aget_type(attr) : H5Dget_type(obj);
    hid_t space = attr >= 0 ? H5Aget_space(attr) : H5Dget_space(obj);
    hssize_t n = H5Sget_simple_extent_npoints(space);
    int rank = H5Sget_simple_extent_ndims(space), bad = ftype < 0 || space < 0 || n < 0;
    hsize_t dims[32] = {0};
    if (!bad && rank > 0 && rank <= 32) H5Sget_simple_extent_dims(space, dims, NULL);
    printf("%s (", label);
    for (int d = 0; d < rank; d++) printf("%s%llu", d ? "," : "", (unsigned long long)dims[d]);
    printf(") =");
    H5T_class_t cls = bad ? H5T_NO_CLASS : H5Tget_class(ftype);
    size_t count = n > 0 ? (size_t)n : 1;
    hid_t mem = -1;
    void *buf = NULL;
    if (cls == H5T_INTEGER)
        mem = H5Tcopy(H5Tget_sign(ftype) == H5T_SGN_NONE ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG);
    else if (cls == H5T_FLOAT)
        mem = H5Tcopy(H5T_NATIVE_DOUBLE);
    else if (cls == H5T_STRING && H5Tis_variable_str(ftype) > 0) {
        mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(ftype)); /* HDF5 converts no ASCII <-> UTF-8 */
    } else if (cls == H5T_STRING) {
        mem = H5Tcopy(ftype);
    } else {
        fprintf(stderr, "h5_digest: %s: a type this tool does not print (class %d)\n", label,
                (int)cls);
        bad = 1;
    }
    size_t esize = mem >= 0 ? H5Tget_size(mem) : 0;
    if (!bad) buf = calloc(count, esize ? esize : 1);
    if (!bad && buf)
        bad = (attr >= 0 ? H5Aread(attr, mem, buf) : H5Dread(obj, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf)) < 0;
    else bad = 1;
    for (hssize_t i = 0; !bad && i < n; i++) {
        if (cls == H5T_INTEGER && H5Tget_sign(ftype) == H5T_SGN_NONE)
            printf(" %llu", ((unsigned long long *)buf)[i]);
        else if (cls == H5T_INTEGER)
            printf(" %lld", ((long long *)buf)[i]);
        else if (cls == H5T_FLOAT)
            printf(" %a", ((double *)buf)[i]);
        else if (esize == sizeof(char *) && H5Tis_variable_str(ftype) > 0)
            printf(" \"%s\"", ((char **)buf)[i] ? ((char **)buf)[i] : "");
        else
            printf(" \"%.*s\"", (int)esize, (char *)buf + (size_t)i * esize);
    }
    printf("\n");
    if (!bad && cls == H5T_STRING && H5Tis_variable_str(ftype) > 0)
        H5Dvlen_reclaim(mem, space, H5P_DEFAULT, buf);
    free(buf);
    if (mem >= 0) H5Tclose(mem);
    if (ftype >= 0) H5Tclose(ftype);
    if (space >= 0) H5Sclose(space);
    if (bad) fprintf(stderr, "h5_digest: cannot read %s\n", label);
    return bad;
}

static herr_t on_attr(hid_t obj, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    const char *path = data;
    if (skipped(name)) return 0;
    char label[4096];
    snprintf(label, sizeof label, "%s@%s", path, name);
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    int bad = a < 0 || print_values(label, obj, a);
    if (a >= 0) H5Aclose(a);
    return bad ? -1 : 0;
}

static herr_t on_object(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    int *bad = data;
    char path[4096];
    snprintf(path, sizeof path, "/%s", strcmp(name, ".") ? name : "");
    if (strcmp(name, ".") && skipped(name)) return 0;
    hid_t o = H5Oopen(root, name, H5P_DEFAULT);
    if (o < 0) return *bad = 1, -1;
    hsize_t idx = 0;
    if (H5Aiterate2(o, H5_INDEX_NAME, H5_ITER_INC, &idx, on_attr, path) < 0) *bad = 1;
    if (info->type == H5O_TYPE_DATASET && print_values(path, o, -1)) *bad = 1;
    else if (info->type == H5O_TYPE_GROUP) printf("%s group\n", path);
    H5Oclose(o);
    return *bad ? -1 : 0;
}

int main(int argc, char **argv)
{
    skips = calloc((size_t)argc, sizeof *skips);
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--skip") && i + 1 < argc) skips[n_skips++] = argv[++i];
        else if (!file) file = argv[i];
        else file = NULL, i = argc;
    }
    if (!file) {
        fprintf(stderr, "usage: h5_digest FILE.h5 [--skip NAME]...\n");
        return 2;
    }
    hid_t f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        fprintf(stderr, "h5_digest: cannot open %s\n", file);
        return 1;
    }
    int bad = 0;
    if (H5Ovisit(f, H5_INDEX_NAME, H5_ITER_INC, on_object, &bad) < 0) bad = 1;
    H5Fclose(f);
    free(skips);
    return bad;
}
