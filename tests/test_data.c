/* Datasets: IDX files (plain and gzip) read and validated, every kind of
 * malformed file refused with a message naming the file, and batches that
 * cover each sample once per epoch, reshuffled from a seed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include <zlib.h>

#include "helpers.h"
#include "data/data_internal.h"

static char dir[256];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/nodeflow-test-data-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static char *path_of(const char *name)
{
    static char path[2][512];
    static int which;
    which ^= 1;
    snprintf(path[which], sizeof path[which], "%s/%s", dir, name);
    return path[which];
}

static void write_file(const char *name, const void *data, size_t n, int gzip)
{
    if (gzip) {
        gzFile f = gzopen(path_of(name), "wb");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path_of(name), "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(data, 1, n, f), n);
        fclose(f);
    }
}

/* 3 images of 2x2 and their labels */
static const unsigned char images[] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                       0, 51, 102, 255, 1, 2, 3, 4, 255, 255, 0, 0};
static const unsigned char labels[] = {0, 0, 8, 1, 0, 0, 0, 3, 2, 0, 1};

static void test_load_plain_and_gzip(void **state)
{
    (void)state;
    nf_error err;
    for (int gz = 0; gz <= 1; gz++) {
        write_file("img", images, sizeof images, gz);
        write_file("lbl", labels, sizeof labels, gz);
        nf_dataset *ds;
        assert_ok(nf_dataset_load_idx(path_of("img"), path_of("lbl"), &ds, &err), &err);
        assert_int_equal(ds->count, 3);
        assert_int_equal(ds->x_shape.rank, 2);
        assert_int_equal(ds->x_shape.dim[0], 2);
        assert_int_equal(ds->y_shape.rank, 0);
        assert_int_equal(ds->classes, 3);
        assert_true(ds->x[1] == 51.0f / 255.0f && ds->x[3] == 1.0f);
        assert_true(ds->y[0] == 2.0f && ds->y[2] == 1.0f);
        nf_dataset_free(ds);
    }
}

static void expect_refused(const unsigned char *img, size_t img_n, const unsigned char *lbl, size_t lbl_n,
                           const char *message)
{
    nf_error err;
    write_file("bad_img", img, img_n, 0);
    write_file("bad_lbl", lbl, lbl_n, 0);
    nf_dataset *ds = (nf_dataset *)1;
    nf_status st = nf_dataset_load_idx(path_of("bad_img"), path_of("bad_lbl"), &ds, &err);
    assert_int_not_equal(st, NF_OK);
    assert_null(ds);
    if (!strstr(err.message, message) || !strstr(err.message, dir))
        fail_msg("message \"%s\" lacks \"%s\" or the file name", err.message, message);
}

static void test_malformed_idx(void **state)
{
    (void)state;
    unsigned char buf[64];
    memcpy(buf, images, sizeof images);
    buf[2] = 0x07; /* no such element type */
    expect_refused(buf, sizeof images, labels, sizeof labels, "not an IDX file");
    memcpy(buf, images, sizeof images);
    buf[3] = 0; /* rank 0 */
    expect_refused(buf, sizeof images, labels, sizeof labels, "IDX rank 0");
    expect_refused(images, 10, labels, sizeof labels, "header ends inside dimension");
    expect_refused(images, 3, labels, sizeof labels, "too short for an IDX header");
    expect_refused(images, sizeof images - 1, labels, sizeof labels, "truncated");
    memcpy(buf, images, sizeof images);
    buf[sizeof images] = 9; /* one byte too many */
    expect_refused(buf, sizeof images + 1, labels, sizeof labels, "data continues past");
    memcpy(buf, images, sizeof images);
    buf[11] = 0; /* a zero dimension */
    expect_refused(buf, sizeof images, labels, sizeof labels, "dimension 2 is 0");
    memcpy(buf, images, 16);
    buf[8] = buf[12] = 0xff; /* 3 x 2^31-ish x 2^31-ish elements */
    expect_refused(buf, 16, labels, sizeof labels, "more than 2^31 elements");
    unsigned char two_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 1};
    expect_refused(images, sizeof images, two_labels, sizeof two_labels, "has 3 images but");
    unsigned char bad_label[] = {0, 0, 0x0D, 1, 0, 0, 0, 3, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    expect_refused(images, sizeof images, bad_label, sizeof bad_label, "labels must be class indices");
}

static void test_missing_and_corrupt_files(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    assert_int_equal(nf_dataset_load_idx("/nonexistent/img", "/nonexistent/lbl", &ds, &err), NF_ERR_IO);
    assert_non_null(strstr(err.message, "/nonexistent/img: cannot open"));
    /* a gzip stream cut in the middle */
    unsigned char big[4096 + 16] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 64, 0, 0, 0, 64};
    for (int i = 16; i < (int)sizeof big; i++)
        big[i] = (unsigned char)(i * 7);
    write_file("gz_img", big, sizeof big, 1);
    FILE *f = fopen(path_of("gz_img"), "rb");
    unsigned char packed[8192];
    size_t n = fread(packed, 1, sizeof packed, f);
    fclose(f);
    write_file("cut_img", packed, n / 2, 0);
    write_file("lbl", labels, sizeof labels, 0);
    assert_int_equal(nf_dataset_load_idx(path_of("cut_img"), path_of("lbl"), &ds, &err), NF_ERR_FORMAT);
}

static void test_batches(void **state)
{
    (void)state;
    nf_error err;
    float xs[10], ys[10];
    for (int i = 0; i < 10; i++)
        xs[i] = ys[i] = (float)i;
    nf_dataset ds = {.count = 10, .x_shape = {0, {0}}, .y_shape = {0, {0}}, .x = xs, .y = ys};
    nf_batcher *b, *same;
    assert_ok(nf_batcher_new(&ds, 4, 1, 77, &b, &err), &err);
    assert_ok(nf_batcher_new(&ds, 4, 1, 77, &same, &err), &err);
    assert_int_equal(nf_batcher_batches(b), 3);
    float order[2][10];
    for (int epoch = 0; epoch < 2; epoch++) {
        float x[4], y[4], x2[4], y2[4];
        int seen[10] = {0}, at = 0;
        int64_t sizes[3], rows;
        int k = 0;
        nf_batcher_rewind(b);
        nf_batcher_rewind(same);
        while ((rows = nf_batcher_next(b, x, y)) > 0) {
            assert_int_equal(nf_batcher_next(same, x2, y2), rows);
            assert_memory_equal(x, x2, (size_t)rows * sizeof(float));
            sizes[k++] = rows;
            for (int64_t r = 0; r < rows; r++) {
                assert_true(x[r] == y[r]);
                seen[(int)x[r]]++;
                order[epoch][at++] = x[r];
            }
        }
        assert_int_equal(k, 3);
        assert_int_equal(sizes[2], 2); /* the last partial batch is kept */
        for (int i = 0; i < 10; i++)
            assert_int_equal(seen[i], 1);
    }
    assert_memory_not_equal(order[0], order[1], sizeof order[0]);
    nf_batcher_free(b);
    nf_batcher_free(same);
    assert_int_equal(nf_batcher_new(&ds, 0, 1, 1, &b, &err), NF_ERR_INVALID_ARGUMENT);
}

static void test_fashion_mnist_files(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *test;
    assert_ok(nf_dataset_load_fashion_mnist(NULL, 0, &test, &err), &err);
    assert_int_equal(test->count, 10000);
    assert_int_equal(test->x_shape.rank, 2);
    assert_int_equal(test->x_shape.dim[0], 28);
    assert_int_equal(test->classes, 10);
    nf_dataset_free(test);
    assert_int_equal(nf_dataset_load_fashion_mnist("/nonexistent", 1, &test, &err), NF_ERR_IO);
}

static void write_text(const char *name, const char *text) { write_file(name, text, strlen(text), 0); }

static void test_csv(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    write_text("a.csv", "w, h ,kind\r\n1.5,2,0\r\n-3,4e1,2\r\n\r\n0,0,1");
    assert_ok(nf_dataset_load_csv(path_of("a.csv"), "kind", &ds, &err), &err);
    assert_int_equal(ds->count, 3);
    assert_int_equal(ds->x_shape.dim[0], 2);
    assert_int_equal(ds->classes, 3);
    assert_true(ds->x[0] == 1.5f && ds->x[3] == 40.0f && ds->y[1] == 2.0f && ds->y[2] == 1.0f);
    nf_dataset_free(ds);
    assert_ok(nf_dataset_load_csv(path_of("a.csv"), "0", &ds, &err), &err); /* by index; not classes */
    assert_int_equal(ds->classes, 0);
    assert_true(ds->y[0] == 1.5f && ds->x[0] == 2.0f);
    nf_dataset_free(ds);
    assert_ok(nf_dataset_load_csv(path_of("a.csv"), NULL, &ds, &err), &err); /* no labels */
    assert_int_equal(ds->x_shape.dim[0], 3);
    nf_dataset_free(ds);
    struct {
        const char *text, *label, *message;
    } bad[] = {
        {"1,2\n3,x4\n", "1", ":2:3: field 2 is 'x4', not a number"},
        {"1,2\n3\n", "1", ":2: 1 fields, but the first row has 2"},
        {"1,2\n", "7", "label column 7 does not exist"},
        {"a,b\n1,2\n", "c", "no column named 'c'"},
        {"a,b\n", "b", "a header line but no rows"},
        {"", NULL, "no rows"},
        {"5\n", "0", "a label column needs at least one feature column"},
        {"1,2\n1,nan\n", NULL, ":2:3: field 2 is 'nan', not a finite number"},
        {"1,2\n1,1e39\n", NULL, ":2:3: field 2 is '1e39', out of float range"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_text("bad.csv", bad[i].text);
        assert_int_not_equal(nf_dataset_load_csv(path_of("bad.csv"), bad[i].label, &ds, &err), NF_OK);
        if (!strstr(err.message, bad[i].message))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, bad[i].message);
    }
    unlink(path_of("a.csv"));
    unlink(path_of("bad.csv"));
}

/* A version 1.0 .npy file with the given descr, shape text and data. */
static void write_npy(const char *name, const char *descr, const char *shape, const void *data, size_t n)
{
    char header[128];
    int len = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    while ((10 + len + 1) % 64)
        header[len++] = ' ';
    header[len++] = '\n';
    unsigned char buf[1024] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)len, 0};
    memcpy(buf + 10, header, (size_t)len);
    memcpy(buf + 10 + len, data, n);
    write_file(name, buf, 10 + (size_t)len + n, 0);
}

static void test_npy(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t y[3] = {0, 1, 1};
    write_npy("x.npy", "<f4", "(3, 2)", x, sizeof x);
    write_npy("y.npy", "<i8", "(3,)", y, sizeof y);
    assert_ok(nf_dataset_load_npy(path_of("x.npy"), path_of("y.npy"), &ds, &err), &err);
    assert_int_equal(ds->count, 3);
    assert_int_equal(ds->x_shape.dim[0], 2);
    assert_int_equal(ds->classes, 2);
    assert_true(ds->x[5] == 6.0f && ds->y[2] == 1.0f);
    nf_dataset_free(ds);
    /* our writer's files read back */
    nf_shape shape = {2, {3, 2}};
    assert_ok(nf_npy_write(path_of("w.npy"), x, &shape, &err), &err);
    assert_ok(nf_dataset_load_npy(path_of("w.npy"), NULL, &ds, &err), &err);
    assert_memory_equal(ds->x, x, sizeof x);
    nf_dataset_free(ds);
    unsigned char u8[3] = {7, 8, 9};
    double f8[4] = {0.5, 1.5, 2.5, 3.5}; /* one more than the shape says */
    struct {
        const char *descr, *shape;
        const void *data;
        size_t n;
        const char *message;
    } bad[] = {
        {"<f4", "(3, 3)", x, sizeof x, "the shape needs 36 bytes of data but the file has 24"},
        {"<c8", "(3,)", x, 24, "unsupported .npy dtype"},
        {"<f4", "(3, -2)", x, sizeof x, "malformed .npy shape"},
        {"<f4", "(0,)", x, 0, "dimension 1 is 0"},
        {"|u1", "(3,)", u8, 1, "needs 3 bytes of data but the file has 1"},
        {"<f8", "(3,)", f8, sizeof f8, "needs 24 bytes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_npy("bad.npy", bad[i].descr, bad[i].shape, bad[i].data, bad[i].n);
        assert_int_not_equal(nf_dataset_load_npy(path_of("bad.npy"), NULL, &ds, &err), NF_OK);
        if (!strstr(err.message, bad[i].message))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, bad[i].message);
    }
    write_file("bad.npy", "\x93NUMPX\x01\x00", 8, 0);
    assert_int_equal(nf_dataset_load_npy(path_of("bad.npy"), NULL, &ds, &err), NF_ERR_FORMAT);
    write_npy("y2.npy", "<i8", "(2,)", y, 16);
    assert_int_equal(nf_dataset_load_npy(path_of("x.npy"), path_of("y2.npy"), &ds, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "has 3 samples but the labels have 2"));
    const char *names[] = {"x.npy", "y.npy", "w.npy", "bad.npy", "y2.npy"};
    for (size_t i = 0; i < 5; i++)
        unlink(path_of(names[i]));
}

static void test_specs(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    const char *bad[] = {"", "fashion-mnist", "fashion-mnist:validation", "idx:only-one", "csv:", "csv:f,lbl=2",
                         "npy:", "zip:a", "csv:a,label="};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(nf_dataset_load_spec(bad[i], &ds, &err), NF_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.message, "is not one of"));
    }
    assert_ok(nf_dataset_load_spec("fashion-mnist:test", &ds, &err), &err);
    assert_int_equal(ds->count, 10000);
    nf_dataset_free(ds);
    write_text("s.csv", "1,2,1\n3,4,0\n");
    char spec[600];
    snprintf(spec, sizeof spec, "csv:%s,label=2", path_of("s.csv"));
    assert_ok(nf_dataset_load_spec(spec, &ds, &err), &err);
    assert_int_equal(ds->count, 2);
    nf_dataset_free(ds);
    unlink(path_of("s.csv"));
}

/* The header guess: a byte order mark is skipped before anything, and a
 * first row of numbers is data even when one is nan, inf or out of range
 * (it is then refused as data, naming its line, not dropped as a header). */
static void test_csv_first_row(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    write_text("bom.csv", "\xef\xbb\xbf" "1,2,0\n3,4,1\n");
    assert_ok(nf_dataset_load_csv(path_of("bom.csv"), "2", &ds, &err), &err);
    assert_int_equal(ds->count, 2);
    assert_true(ds->x[0] == 1.0f && ds->y[1] == 1.0f);
    nf_dataset_free(ds);
    write_text("bom.csv", "\xef\xbb\xbf" "w,h,kind\n1,2,0\n3,4,1\n"); /* the first name is "w", not BOM + "w" */
    assert_ok(nf_dataset_load_csv(path_of("bom.csv"), "w", &ds, &err), &err);
    assert_int_equal(ds->count, 2);
    assert_true(ds->y[0] == 1.0f && ds->y[1] == 3.0f);
    nf_dataset_free(ds);
    write_text("bom.csv", "a,b\n0.0,-0\n1.1754944e-38,3.4028234e38\n"); /* zeros and the ends of the float range */
    assert_ok(nf_dataset_load_csv(path_of("bom.csv"), NULL, &ds, &err), &err);
    assert_int_equal(ds->count, 2);
    nf_dataset_free(ds);
    /* below float's range: the nearest float, a subnormal or 0 (as numpy converts) */
    write_text("bom.csv", "1e-40,-1e-400\n1e-320,1\n");
    assert_ok(nf_dataset_load_csv(path_of("bom.csv"), NULL, &ds, &err), &err);
    assert_true(ds->x[0] == 1e-40f && ds->x[1] == 0.0f && ds->x[2] == 0.0f);
    nf_dataset_free(ds);
    struct {
        const char *text, *message;
    } refused[] = {
        {"nan,2,0\n3,4,1\n", ":1:1: field 1 is 'nan', not a finite number"},
        {"\xef\xbb\xbf" "NaN,2,0\n3,4,1\n", ":1:1: field 1 is 'NaN', not a finite number"},
        {"1,-Infinity,0\n", ":1:3: field 2 is '-Infinity', not a finite number"},
        {"1, inf ,0\n", ":1:3: field 2 is 'inf', not a finite number"},
        {"1,1e39,0\n", ":1:3: field 2 is '1e39', out of float range"},
        {"1,1e309,0\n", ":1:3: field 2 is '1e309', out of float range"},
        {"1,,0\n", ":1:3: field 2 is empty, not a number"},
        {"a,b,c\n1,2,0\n\n3,x,1\n", ":4:3: field 2 is 'x', not a number"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        write_text("bom.csv", refused[i].text);
        ds = (nf_dataset *)1;
        assert_int_equal(nf_dataset_load_csv(path_of("bom.csv"), NULL, &ds, &err), NF_ERR_FORMAT);
        assert_null(ds);
        if (!strstr(err.message, refused[i].message))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err.message, refused[i].message);
    }
    unlink(path_of("bom.csv"));
}

/* A .npy header in memory: `header` padded to 64 bytes with spaces and a
 * newline (unless `raw`), then `data`. */
static nf_status parse_npy_header(int version, const char *header, int raw, const void *data, size_t n,
                                  nf_npy *out, nf_error *err)
{
    char buf[1024];
    size_t start = version == 1 ? 10 : 12, len = strlen(header);
    memcpy(buf + start, header, len);
    while (!raw && (start + len + 1) % 64)
        buf[start + len++] = ' ';
    if (!raw)
        buf[start + len++] = '\n';
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (char)version;
    buf[7] = 0;
    for (size_t i = 0; i < start - 8; i++)
        buf[8 + i] = (char)(len >> (8 * i));
    memcpy(buf + start + len, data, n);
    return nf_npy_parse("h.npy", buf, start + len + n, out, err);
}

static void test_npy_header_literal(void **state)
{
    (void)state;
    nf_error err;
    nf_npy a;
    float v[6] = {1, 2, 3, 4, 5, 6};
    struct {
        int version;
        const char *header;
        int rank;
        int64_t count;
    } accepted[] = {
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 0, 1},
        {1, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (6,)}", 1, 6},
        {1, "{'shape': (2, 3), 'fortran_order': False, 'descr': '<f4'}", 2, 6},
        {1, "{'descr':'<f4','fortran_order':False,'shape':(1,2,3,),}", 3, 6},
        {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 2, 6},
        {3, "{'descr': '<f4',\n 'fortran_order': False,\t'shape': (6,), }", 1, 6},
    };
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        nf_status st = parse_npy_header(accepted[i].version, accepted[i].header, 0, v,
                                        (size_t)accepted[i].count * sizeof(float), &a, &err);
        if (st != NF_OK)
            fail_msg("accepted %zu: %s", i, err.message);
        assert_int_equal(a.shape.rank, accepted[i].rank);
        assert_int_equal(nf_shape_size(&a.shape), accepted[i].count);
        assert_true(a.data[accepted[i].count - 1] == v[accepted[i].count - 1]);
        free(a.data);
    }
    struct {
        const char *header, *message;
        int raw; /* the header as it is, without padding and newline */
    } refused[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", "expected ',' after the one dimension", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (,), }", "expected a dimension (a whole number >= 0) or ')', found ','", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (06,), }", "found '06'", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6L,), }", "found '6L'", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6.0,), }", "found '6.0'", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': [6], }", "expected a tuple such as (3, 2), found '['", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 6), }", "more than 6 dimensions", 0},
        {"{'descr': '<f4', 'fortran_order': 0, 'shape': (6,), }", "expected True or False for 'fortran_order', found '0'", 0},
        {"{'descr': <f4, 'fortran_order': False, 'shape': (6,), }", "expected a quoted dtype such as '<f4' for 'descr', found '<'", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'extra': 1}", "unknown key 'extra'", 0},
        {"{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", "has the key 'descr' twice", 0},
        {"{'descr': '<f4', 'shape': (6,)}", "lacks the key 'fortran_order'", 0},
        {"{}", "lacks the key 'descr'", 0},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (6,)}", "expected ':' after the key, found ''<f4''", 0},
        {"{'descr': '<f4', 'fortran_order': False 'shape': (6,)}", "expected ',' or '}', found ''shape''", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }}\n", "'}\\x0a' after the .npy header's closing brace", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }  \t \n", "'\\x09 \\x0a' after the .npy header's closing brace", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }\n\n", "'\\x0a\\x0a' after the .npy header's closing brace", 1},
        {" {'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", "expected '{' at its start, found ' '", 0},
        {"{'descr': '<\\x66\\x34', 'fortran_order': False, 'shape': (6,), }", "expected a quoted dtype", 0},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (6,), ", "expected a quoted key or '}', found the end of the header", 0},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(parse_npy_header(1, refused[i].header, refused[i].raw, v, sizeof v, &a, &err), NF_ERR_FORMAT);
        assert_null(a.data);
        if (!strstr(err.message, refused[i].message) || strncmp(err.message, "h.npy: ", 7) != 0)
            fail_msg("refused %zu: \"%s\" lacks \"%s\"", i, err.message, refused[i].message);
    }
    /* the header's length stays within the file, in each version */
    const char *fine = "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }";
    for (int version = 1; version <= 3; version++) {
        char buf[128] = "\x93NUMPY";
        buf[6] = (char)version;
        memset(buf + 8, 0xff, 4);
        memcpy(buf + 12, fine, strlen(fine));
        assert_int_equal(nf_npy_parse("h.npy", buf, 12 + strlen(fine), &a, &err), NF_ERR_FORMAT);
        assert_non_null(strstr(err.message, "the .npy header runs past the end of the file"));
        assert_int_equal(nf_npy_parse("h.npy", buf, version == 1 ? 9 : 11, &a, &err), NF_ERR_FORMAT);
        assert_non_null(strstr(err.message, "ends inside its preamble"));
    }
    assert_int_equal(parse_npy_header(4, fine, 0, v, sizeof v, &a, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "unknown .npy version 4.0"));
    assert_int_equal(parse_npy_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), }", 1, v, sizeof v,
                                      &a, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "the .npy header does not end with a newline"));
    /* an element count past the memory limit (64 bytes at least: 16 floats) */
    float big[20] = {0};
    size_t limit = nf_memory_limit();
    nf_set_memory_limit(64);
    assert_int_equal(parse_npy_header(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (20,), }", 0, big,
                                      sizeof big, &a, &err), NF_ERR_FORMAT);
    nf_set_memory_limit(limit);
    assert_non_null(strstr(err.message, "20 elements pass the memory limit of 64 bytes"));
}

/* NaN and infinities are refused in every array, naming the element;
 * float64 values must not pass float's range; smaller ones round to a
 * subnormal or 0, and a subnormal float32 is kept as it is. */
static void test_npy_values(void **state)
{
    (void)state;
    nf_error err;
    nf_npy a;
    const char *f4 = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    const char *f8 = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }";
    float x[6] = {0, 1, 2, 3, 4, 1e-40f};
    assert_ok(parse_npy_header(1, f4, 0, x, sizeof x, &a, &err), &err);
    assert_true(a.data[5] == 1e-40f);
    free(a.data);
    x[4] = -INFINITY;
    assert_int_equal(parse_npy_header(1, f4, 0, x, sizeof x, &a, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "h.npy: element [1, 1] is -infinity; values must be finite numbers");
    double d[6] = {0, 1, 2, 3, 1e-300, 1e-45};
    assert_ok(parse_npy_header(1, f8, 0, d, sizeof d, &a, &err), &err);
    assert_true(a.data[4] == 0.0f && a.data[5] == 1e-45f);
    free(a.data);
    struct {
        double value;
        const char *message;
    } refused[] = {
        {NAN, "h.npy: element [0, 2] is NaN; values must be finite numbers"},
        {1e39, "h.npy: element [0, 2] is 1e+39, out of float range"},
        {-1e300, "h.npy: element [0, 2] is -1e+300, out of float range"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        d[2] = refused[i].value;
        assert_int_equal(parse_npy_header(1, f8, 0, d, sizeof d, &a, &err), NF_ERR_FORMAT);
        assert_string_equal(err.message, refused[i].message);
    }
}

/* Class labels checked against a model's classes, naming the file and
 * the row (CSV line, array index) of the first bad one. */
static void test_check_classes(void **state)
{
    (void)state;
    nf_error err;
    nf_dataset *ds;
    write_text("c.csv", "f,kind\n1,0\n\n2,1.5\n3,2\n");
    assert_ok(nf_dataset_load_csv(path_of("c.csv"), "kind", &ds, &err), &err);
    assert_int_equal(ds->classes, 0); /* 1.5: a regression target, until a classifier reads it */
    assert_int_equal(nf_dataset_check_classes(ds, 3, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "c.csv:4: label 1.5, not one of the 3 class indices 0 .. 2"));
    nf_dataset_free(ds);
    write_text("c.csv", "1,0\n\n\n2,-1\n");
    assert_ok(nf_dataset_load_csv(path_of("c.csv"), "1", &ds, &err), &err);
    assert_int_equal(nf_dataset_check_classes(ds, 3, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "c.csv:4: label -1, not one of the 3 class indices 0 .. 2"));
    nf_dataset_free(ds);
    write_text("c.csv", "1,0\n2,5\n3,16777216\n");
    assert_ok(nf_dataset_load_csv(path_of("c.csv"), "1", &ds, &err), &err);
    assert_int_equal(ds->classes, 0);
    assert_int_equal(nf_dataset_check_classes(ds, 6, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "c.csv:3: label 16777216, not one of the 6 class indices 0 .. 5"));
    nf_dataset_truncate(ds, 2);
    assert_ok(nf_dataset_check_classes(ds, 6, &err), &err);
    assert_int_equal(nf_dataset_check_classes(ds, 3, &err), NF_ERR_SHAPE);
    assert_non_null(strstr(err.message, "c.csv:2: label 5, not one of the 3 class indices 0 .. 2"));
    nf_dataset_free(ds);
    /* .npy labels: their index */
    float x[3] = {1, 2, 3};
    int64_t y[3] = {0, 1, 7};
    write_npy("cx.npy", "<f4", "(3,)", x, sizeof x);
    write_npy("cy.npy", "<i8", "(3,)", y, sizeof y);
    assert_ok(nf_dataset_load_npy(path_of("cx.npy"), path_of("cy.npy"), &ds, &err), &err);
    assert_int_equal(ds->classes, 8);
    assert_int_equal(nf_dataset_check_classes(ds, 3, &err), NF_ERR_SHAPE);
    assert_non_null(strstr(err.message, "cy.npy: label [2] is 7, not one of the 3 class indices 0 .. 2"));
    nf_dataset_free(ds);
    /* IDX labels */
    write_file("img", images, sizeof images, 0);
    write_file("lbl", labels, sizeof labels, 0);
    assert_ok(nf_dataset_load_idx(path_of("img"), path_of("lbl"), &ds, &err), &err);
    assert_int_equal(nf_dataset_check_classes(ds, 2, &err), NF_ERR_SHAPE);
    assert_non_null(strstr(err.message, "lbl: label [0] is 2, not one of the 2 class indices 0 .. 1"));
    nf_dataset_free(ds);
    /* text: the byte of a token id */
    write_text("c.txt", "abcabcabca");
    assert_ok(nf_dataset_load_text(path_of("c.txt"), 2, 1, &ds, &err), &err);
    assert_ok(nf_dataset_check_classes(ds, 3, &err), &err);
    assert_int_equal(nf_dataset_check_classes(ds, 2, &err), NF_ERR_SHAPE);
    assert_non_null(strstr(err.message, "c.txt: label [0, 1] is 2 (byte 'c'), not one of the 2 class indices 0 .. 1"));
    nf_dataset_free(ds);
    /* a dataset a program made: no file to name */
    float xs[2] = {0, 0}, ys[2] = {0, 2};
    nf_dataset own = {.count = 2, .x_shape = {0, {0}}, .y_shape = {0, {0}}, .x = xs, .y = ys};
    assert_int_equal(nf_dataset_check_classes(&own, 2, &err), NF_ERR_SHAPE);
    assert_string_equal(err.message, "label [1] is 2, not one of the 2 class indices 0 .. 1");
    assert_ok(nf_dataset_check_classes(&own, 3, &err), &err);
    assert_int_equal(nf_dataset_check_classes(&own, 0, &err), NF_ERR_INVALID_ARGUMENT);
    assert_int_equal(nf_dataset_check_classes(NULL, 2, &err), NF_ERR_INVALID_ARGUMENT);
    const char *names[] = {"c.csv", "cx.npy", "cy.npy", "c.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_of(names[i]));
}

/* A vocabulary that lists a byte twice is refused, the byte escaped. */
static void test_vocab_duplicate(void **state)
{
    (void)state;
    nf_error err;
    float ids[4];
    assert_ok(nf_text_to_ids((const unsigned char *)"ab\n", 3, "ba\n", 3, ids, &err), &err);
    assert_true(ids[0] == 1.0f && ids[2] == 2.0f);
    assert_int_equal(nf_text_to_ids((const unsigned char *)"abca", 4, "a", 1, ids, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "the vocabulary lists byte 'a' twice, as ids 0 and 3");
    assert_int_equal(nf_text_to_ids((const unsigned char *)"\nab\n", 4, "a", 1, ids, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "the vocabulary lists byte '\\x0a' twice, as ids 0 and 3");
    assert_int_equal(nf_text_to_ids((const unsigned char *)"\xff\\\xff", 3, "", 0, ids, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "the vocabulary lists byte '\\xff' twice, as ids 0 and 2");
    assert_int_equal(nf_text_to_ids((const unsigned char *)"\\a\\", 3, "", 0, ids, &err), NF_ERR_FORMAT);
    assert_string_equal(err.message, "the vocabulary lists byte '\\\\' twice, as ids 0 and 2");
    assert_int_equal(nf_text_to_ids((const unsigned char *)"ab", 300, "a", 1, ids, &err), NF_ERR_INVALID_ARGUMENT);
}

/* No message carries a control character, an invisible or reordering
 * format character or a byte that is not UTF-8 from a name or a file. */
static void test_escaped_messages(void **state)
{
    (void)state;
    char out[64];
    assert_string_equal(nf_shown("a\\b\x1b[1m\xc3\xa9\x7f", 10, out, sizeof out), "a\\\\b\\x1b[1m\xc3\xa9\\x7f");
    assert_string_equal(nf_shown("\xe2\x80\xae\xc2\x9b\xc0\x80\xed\xa0\x80\xef\xbb\xbf", 13, out, sizeof out),
                        "\\xe2\\x80\\xae\\xc2\\x9b\\xc0\\x80\\xed\\xa0\\x80\\xef\\xbb\\xbf");
    assert_string_equal(nf_shown("abcdefghij", 10, out, 8), "abcd...");
    assert_string_equal(nf_shown("abcdefg", 7, out, 8), "abcdefg");
    assert_string_equal(nf_shown("\x01\x02", 2, out, 8), "\\x01...");
    nf_error err;
    nf_dataset *ds;
    write_text("e\x1b[31m\xe2\x80\xae.csv", "1,2\n3,\x07x\n");
    assert_int_equal(nf_dataset_load_csv(path_of("e\x1b[31m\xe2\x80\xae.csv"), NULL, &ds, &err), NF_ERR_FORMAT);
    assert_non_null(strstr(err.message, "/e\\x1b[31m\\xe2\\x80\\xae.csv:2:3: field 2 is '\\x07x', not a number"));
    unlink(path_of("e\x1b[31m\xe2\x80\xae.csv"));
    assert_int_not_equal(nf_dataset_load_csv("/nonexistent/\x1b]0;title\x07", NULL, &ds, &err), NF_OK);
    assert_non_null(strstr(err.message, "/nonexistent/\\x1b]0;title\\x07"));
    assert_int_equal(nf_dataset_load_spec("zip:\x1b[2J\xe9t\xc3\xa9", &ds, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "'zip:\\x1b[2J\\xe9t\xc3\xa9'"));
    write_text("a.csv", "a,b\n1,2\n");
    assert_int_equal(nf_dataset_load_csv(path_of("a.csv"), "\x1b[0m", &ds, &err), NF_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.message, "no column named '\\x1b[0m'"));
    unlink(path_of("a.csv"));
    for (const char *c = err.message; *c; c++)
        assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
}

/* tests/bad/data: each NAME.expected holds a data spec (relative to that
 * folder) and the exact error it must give. */
static void test_bad_data_corpus(void **state)
{
    (void)state;
    char folder[1024], cwd[1024];
    snprintf(folder, sizeof folder, "%s/tests/bad/data", NF_SOURCE_DIR);
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(folder), 0);
    DIR *d = opendir(".");
    struct dirent *e;
    int checked = 0;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 10 || strcmp(e->d_name + n - 9, ".expected") != 0)
            continue;
        char spec[512] = "", expected[1024] = "";
        FILE *f = fopen(e->d_name, "r");
        assert_non_null(f);
        assert_non_null(fgets(spec, sizeof spec, f));
        assert_non_null(fgets(expected, sizeof expected, f));
        fclose(f);
        spec[strcspn(spec, "\n")] = '\0';
        expected[strcspn(expected, "\n")] = '\0';
        nf_dataset *ds = NULL;
        nf_error err;
        assert_int_not_equal(nf_dataset_load_spec(spec, &ds, &err), NF_OK);
        assert_null(ds);
        if (strcmp(err.message, expected) != 0)
            fail_msg("%s:\n  got      %s\n  expected %s", spec, err.message, expected);
        checked++;
    }
    closedir(d);
    assert_int_equal(chdir(cwd), 0);
    assert_true(checked >= 12);
}

static int remove_dir(void **state)
{
    (void)state;
    const char *names[] = {"img", "lbl", "bad_img", "bad_lbl", "gz_img", "cut_img"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_of(names[i]));
    return rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_plain_and_gzip),
        cmocka_unit_test(test_malformed_idx),
        cmocka_unit_test(test_missing_and_corrupt_files),
        cmocka_unit_test(test_batches),
        cmocka_unit_test(test_fashion_mnist_files),
        cmocka_unit_test(test_csv),
        cmocka_unit_test(test_npy),
        cmocka_unit_test(test_specs),
        cmocka_unit_test(test_bad_data_corpus),
        cmocka_unit_test(test_csv_first_row),
        cmocka_unit_test(test_npy_header_literal),
        cmocka_unit_test(test_npy_values),
        cmocka_unit_test(test_check_classes),
        cmocka_unit_test(test_vocab_duplicate),
        cmocka_unit_test(test_escaped_messages),
    };
    return cmocka_run_group_tests_name("data", tests, make_dir, remove_dir);
}
