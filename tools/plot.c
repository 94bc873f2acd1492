/* nodeflow plot, and eval --confusion-png: pictures of a training (the
 * CSV that train --log writes: loss and each metric per epoch, train and
 * validation, the learning rate on a second axis) and of a classifier's
 * confusion matrix (a heat map with the class names). Drawn with cairo,
 * the Meson feature 'plot' (libcairo2-dev): cairo writes PNG and SVG
 * itself and draws text with the system's fonts, and the axes, ticks and
 * legends are a few functions here. The file is written whole or not at
 * all (the image is made in memory, then nf_file_write). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#ifdef NF_HAVE_CAIRO
#include <cairo-svg.h>
#include <cairo.h>
#include <fontconfig/fontconfig.h>
#endif

enum { MAX_COLUMNS = 64, MAX_ROWS = 100000, CELL = 64 };

/* ---- the log -------------------------------------------------------------------- */

typedef struct table {
    char names[MAX_COLUMNS][48];
    int columns;
    int64_t rows;
    double *values;      /* rows x columns; NAN where a cell is empty */
} table;

static int column(const table *t, const char *name)
{
    for (int c = 0; c < t->columns; c++)
        if (!strcmp(t->names[c], name))
            return c;
    return -1;
}

/* The whole file, NUL-terminated (at most 1 GiB). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nodeflow: cannot open %s\n", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    char *text = malloc(cap + 1);
    while (text && (got = fread(text + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            char *grown = cap < ((size_t)1 << 30) ? realloc(text, 2 * cap + 1) : NULL;
            if (!grown) {
                free(text);
                text = NULL;
                fprintf(stderr, "nodeflow: %s: too large (or out of memory)\n", path);
                break;
            }
            text = grown, cap *= 2;
        }
    }
    fclose(f);
    if (text)
        text[n] = '\0';
    *len = n;
    return text;
}

/* Cell [p, p + n) as a number (NAN when empty); 0 if it is not one. */
static int parse_cell(const char *p, size_t n, double *out)
{
    char cell[64];
    if (n == 0) {
        *out = NAN;
        return 1;
    }
    if (n >= sizeof cell)
        return 0;
    memcpy(cell, p, n);
    cell[n] = '\0';
    char *end;
    *out = strtod(cell, &end);
    return end == cell + n;
}

/* Reads train --log's CSV: a header of names, then rows of numbers (or
 * empty cells), each as long as the header. */
static int read_log(const char *path, table *t)
{
    memset(t, 0, sizeof *t);
    size_t len;
    char *text = slurp(path, &len);
    if (!text)
        return EXIT_USAGE;
    char *p = text;
    for (;;) { /* the header */
        size_t n = strcspn(p, ",\n\r");
        if (t->columns == MAX_COLUMNS || n == 0 || n >= sizeof t->names[0]) {
            fprintf(stderr, "nodeflow: %s:1:%d: expected a header of column names (at most %d, each under 48 "
                            "characters)\n", path, (int)(p - text) + 1, MAX_COLUMNS);
            free(text);
            return EXIT_USAGE;
        }
        memcpy(t->names[t->columns++], p, n);
        p += n;
        if (*p != ',')
            break;
        p++;
    }
    if (column(t, "epoch") < 0) {
        fprintf(stderr, "nodeflow: %s:1:1: expected an 'epoch' column (the CSV that nodeflow train --log writes)\n",
                path);
        free(text);
        return EXIT_USAGE;
    }
    int64_t cap = 0, line = 1;
    int rc = EXIT_OK;
    while (rc == EXIT_OK) {
        while (*p == '\n' || *p == '\r')
            line += *p++ == '\n';
        if (!*p)
            break;
        if (t->rows == MAX_ROWS) {
            fprintf(stderr, "nodeflow: %s:%lld: more than %d rows\n", path, (long long)line, MAX_ROWS);
            rc = EXIT_USAGE;
            break;
        }
        if (t->rows == cap) {
            int64_t grown_cap = cap ? 2 * cap : 64;
            double *grown = realloc(t->values, (size_t)(grown_cap * t->columns) * sizeof(double));
            if (!grown) {
                fprintf(stderr, "nodeflow: out of memory\n");
                rc = EXIT_RUNTIME;
                break;
            }
            t->values = grown, cap = grown_cap;
        }
        const char *row = p;
        for (int c = 0; c < t->columns && rc == EXIT_OK; c++) {
            size_t n = strcspn(p, ",\n\r");
            int last = c + 1 == t->columns;
            if (!parse_cell(p, n, &t->values[t->rows * t->columns + c]) || (last ? p[n] == ',' : p[n] != ',')) {
                fprintf(stderr, "nodeflow: %s:%lld:%d: expected a number or an empty cell, then %s\n", path,
                        (long long)line, (int)(p - row) + 1, last ? "the end of the line" : "','");
                rc = EXIT_USAGE;
            }
            p += n + !last;
        }
        t->rows++;
    }
    free(text);
    if (rc == EXIT_OK && t->rows == 0) {
        fprintf(stderr, "nodeflow: %s: no epochs to plot\n", path);
        rc = EXIT_USAGE;
    }
    return rc;
}

#ifdef NF_HAVE_CAIRO

/* ---- drawing ----------------------------------------------------------------------- */

/* The image in memory, written whole at the end. */
typedef struct image {
    unsigned char *bytes;
    size_t size, cap;
    int failed;
} image;

static cairo_status_t collect(void *ctx, const unsigned char *data, unsigned int length)
{
    image *m = ctx;
    if (m->size + length > m->cap) {
        size_t cap = (m->cap ? 2 * m->cap : 65536) + length;
        unsigned char *grown = realloc(m->bytes, cap);
        if (!grown) {
            m->failed = 1;
            return CAIRO_STATUS_NO_MEMORY;
        }
        m->bytes = grown, m->cap = cap;
    }
    memcpy(m->bytes + m->size, data, length);
    m->size += length;
    return CAIRO_STATUS_SUCCESS;
}

static int is_svg(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && !strcmp(path + n - 4, ".svg");
}

/* A surface of w x h for path (.svg or .png), drawing into m. */
static cairo_surface_t *surface_for(const char *path, double w, double h, image *m)
{
    return is_svg(path) ? cairo_svg_surface_create_for_stream(collect, m, w, h)
                        : cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)w, (int)h);
}

/* Finishes the surface and writes the file whole. */
static int write_image(const char *path, cairo_surface_t *s, image *m)
{
    if (!is_svg(path))
        cairo_surface_write_to_png_stream(s, collect, m);
    cairo_surface_finish(s);
    cairo_status_t status = cairo_surface_status(s);
    cairo_surface_destroy(s);
    nf_error err;
    int rc = EXIT_OK;
    if (m->failed || status != CAIRO_STATUS_SUCCESS) {
        fprintf(stderr, "nodeflow: drawing %s: %s\n", path,
                m->failed ? "out of memory" : cairo_status_to_string(status));
        rc = EXIT_RUNTIME;
    } else if (nf_file_write(path, m->bytes, m->size, &err) != NF_OK) {
        rc = cli_fail(&err);
    }
    free(m->bytes);
    /* cairo's and fontconfig's caches, released (the process ends soon;
     * a leak checker then sees nothing left) */
    cairo_debug_reset_static_data();
    FcFini();
    return rc;
}

/* A drawing context on s, painted white, with the text font chosen. */
static cairo_t *blank_canvas(cairo_surface_t *s)
{
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
    return cr;
}

static void text_at(cairo_t *cr, double x, double y, const char *s, double align_x, double align_y, double size)
{
    cairo_text_extents_t e;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, s, &e);
    cairo_move_to(cr, x - align_x * e.width - e.x_bearing, y - align_y * e.height - e.y_bearing);
    cairo_show_text(cr, s);
}

/* Round tick steps: 1, 2 or 5 times a power of ten, about n of them. */
static double tick_step(double lo, double hi, int n)
{
    double raw = (hi - lo) / n, power = pow(10, floor(log10(raw))), f = raw / power;
    return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

typedef struct axis {
    double lo, hi;
} axis;

/* The range of the finite values of columns a and b (b may be -1), padded. */
static axis range_of(const table *t, int a, int b)
{
    axis r = {INFINITY, -INFINITY};
    for (int64_t i = 0; i < t->rows; i++)
        for (int k = 0; k < 2; k++) {
            int c = k ? b : a;
            double v = c >= 0 ? t->values[i * t->columns + c] : NAN;
            if (isfinite(v))
                r.lo = fmin(r.lo, v), r.hi = fmax(r.hi, v);
        }
    if (!(r.hi > r.lo)) { /* (one value: a range around it that its precision can tell apart) */
        double mid = isfinite(r.lo) ? r.lo : 0, half = fmax(0.5, fabs(mid) * 1e-6);
        r.lo = mid - half, r.hi = mid + half;
    }
    double pad = 0.06 * (r.hi - r.lo);
    return (axis){r.lo - pad, r.hi + pad};
}

typedef struct frame {
    double x0, y0, w, h; /* the plot area */
    axis x, y;
} frame;

static double fx(const frame *f, double v) { return f->x0 + (v - f->x.lo) / (f->x.hi - f->x.lo) * f->w; }
static double fy(const frame *f, double v) { return f->y0 + f->h - (v - f->y.lo) / (f->y.hi - f->y.lo) * f->h; }

/* Whether ticks `step` apart can be counted over the axis (a range too
 * narrow for its numbers' precision gets none). */
static int countable(axis a, double step)
{
    double first = a.lo / step, last = a.hi / step;
    return a.hi > a.lo && step > 0 && isfinite(first) && isfinite(last) && fabs(first) < 1e15 && fabs(last) < 1e15;
}

/* The frame, grid, ticks and their labels (right: the ticks on the right
 * side for a second axis, no grid). */
static void draw_axes(cairo_t *cr, const frame *f, int right, const char *label)
{
    char text[32];
    cairo_set_line_width(cr, 1);
    double step = tick_step(f->y.lo, f->y.hi, 5);
    int ticks = countable(f->y, step);
    int64_t k0 = ticks ? (int64_t)ceil(f->y.lo / step) : 0;
    for (int64_t k = 0; ticks && k <= 50 && (k0 + k) * step <= f->y.hi; k++) {
        double v = (double)(k0 + k) * step; /* (counted: a step below the doubles' spacing cannot loop) */
        if (!right) {
            cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
            cairo_move_to(cr, f->x0, fy(f, v));
            cairo_line_to(cr, f->x0 + f->w, fy(f, v));
            cairo_stroke(cr);
        }
        cairo_set_source_rgb(cr, right ? 0.45 : 0.2, right ? 0.45 : 0.2, right ? 0.45 : 0.2);
        snprintf(text, sizeof text, "%g", fabs(v) < step * 1e-6 ? 0.0 : v);
        text_at(cr, right ? f->x0 + f->w + 6 : f->x0 - 6, fy(f, v), text, right ? 0 : 1, 0.5, 11);
    }
    if (!right) {
        double xs = fmax(1, tick_step(f->x.lo, f->x.hi, 8));
        int xticks = countable(f->x, xs);
        int64_t k0 = xticks ? (int64_t)ceil(f->x.lo / xs) : 0;
        for (int64_t k = 0; xticks && k <= 50 && (k0 + k) * xs <= f->x.hi; k++) {
            double v = (double)(k0 + k) * xs;
            snprintf(text, sizeof text, "%g", v);
            text_at(cr, fx(f, v), f->y0 + f->h + 6, text, 0.5, 0, 11);
        }
        cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
        cairo_rectangle(cr, f->x0, f->y0, f->w, f->h);
        cairo_stroke(cr);
        text_at(cr, f->x0 + f->w / 2, f->y0 + f->h + 22, "epoch", 0.5, 0, 12);
    }
    cairo_save(cr); /* the axis title, turned */
    double tx = right ? f->x0 + f->w + 64 : f->x0 - 50, ty = f->y0 + f->h / 2;
    cairo_translate(cr, tx, ty);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, label, 0.5, 0.5, 12);
    cairo_restore(cr);
}

/* Column c as a line with dots (dashed: the learning rate). */
static void draw_series(cairo_t *cr, const frame *f, const table *t, int epoch, int c, double r, double g, double b,
                        int dashed)
{
    static const double dash[] = {5, 4};
    cairo_set_source_rgb(cr, r, g, b);
    cairo_set_line_width(cr, 2);
    cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
    int drawing = 0;
    for (int64_t i = 0; i < t->rows; i++) {
        double x = t->values[i * t->columns + epoch], y = t->values[i * t->columns + c];
        if (!isfinite(x) || !isfinite(y)) {
            drawing = 0;
            continue;
        }
        if (drawing)
            cairo_line_to(cr, fx(f, x), fy(f, y));
        else
            cairo_move_to(cr, fx(f, x), fy(f, y));
        drawing = 1;
    }
    cairo_stroke(cr);
    cairo_set_dash(cr, dash, 0, 0);
    for (int64_t i = 0; !dashed && i < t->rows && t->rows <= 200; i++) {
        double x = t->values[i * t->columns + epoch], y = t->values[i * t->columns + c];
        if (isfinite(x) && isfinite(y)) {
            cairo_arc(cr, fx(f, x), fy(f, y), 3, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    }
}

static void legend_entry(cairo_t *cr, double x, double y, const char *name, double r, double g, double b, int dashed)
{
    static const double dash[] = {5, 4};
    cairo_set_source_rgb(cr, r, g, b);
    cairo_set_line_width(cr, 2);
    cairo_set_dash(cr, dash, dashed ? 2 : 0, 0);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + 22, y);
    cairo_stroke(cr);
    cairo_set_dash(cr, dash, 0, 0);
    cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
    text_at(cr, x + 28, y, name, 0, 0.5, 11);
}

static const char *const quantities[] = {"loss", "accuracy", "top5", "f1", "label_accuracy", "subset_accuracy",
                                         "mse", "mae", "r2", NULL};

/* Whether column c has a finite value. */
static int has_values(const table *t, int c)
{
    for (int64_t i = 0; c >= 0 && i < t->rows; i++)
        if (isfinite(t->values[i * t->columns + c]))
            return 1;
    return 0;
}

int cli_plot_curves(const char *log_path, const char *out, const char *title)
{
    table t;
    int rc = read_log(log_path, &t);
    if (rc != EXIT_OK) {
        free(t.values);
        return rc;
    }
    int panels[16], n = 0, epoch = column(&t, "epoch"), lr = column(&t, "lr");
    for (int q = 0; quantities[q]; q++) {
        char train[64], val[64];
        snprintf(train, sizeof train, "train_%s", quantities[q]);
        snprintf(val, sizeof val, "val_%s", quantities[q]);
        if (has_values(&t, column(&t, train)) || has_values(&t, column(&t, val)))
            panels[n++] = q;
    }
    if (n == 0) {
        fprintf(stderr, "nodeflow: %s: no train_ or val_ column with values to plot\n", log_path);
        free(t.values);
        return EXIT_USAGE;
    }
    double width = 990, panel = 250, top = 56, height = top + n * panel + 10;
    image m = {NULL, 0, 0, 0};
    cairo_surface_t *s = surface_for(out, width, height, &m);
    cairo_t *cr = blank_canvas(s);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, width / 2, 22, title ? title : log_path, 0.5, 0.5, 15);
    axis epochs = range_of(&t, epoch, -1);
    for (int k = 0; k < n; k++) {
        char train[64], val[64];
        snprintf(train, sizeof train, "train_%s", quantities[panels[k]]);
        snprintf(val, sizeof val, "val_%s", quantities[panels[k]]);
        int ct = column(&t, train), cv = column(&t, val);
        frame f = {90, top + k * panel + 8, width - 290, panel - 70, epochs, range_of(&t, ct, cv)};
        draw_axes(cr, &f, 0, quantities[panels[k]]);
        if (has_values(&t, ct))
            draw_series(cr, &f, &t, epoch, ct, 0.12, 0.40, 0.75, 0);
        if (has_values(&t, cv))
            draw_series(cr, &f, &t, epoch, cv, 0.90, 0.45, 0.10, 0);
        double ly = f.y0 + 10;
        legend_entry(cr, f.x0 + f.w + 86, ly, "train", 0.12, 0.40, 0.75, 0);
        legend_entry(cr, f.x0 + f.w + 86, ly + 18, "validation", 0.90, 0.45, 0.10, 0);
        if (k == 0 && has_values(&t, lr)) { /* the learning rate, on the loss panel's right axis */
            frame r = f;
            r.y = range_of(&t, lr, -1);
            draw_series(cr, &r, &t, epoch, lr, 0.45, 0.45, 0.45, 1);
            draw_axes(cr, &r, 1, "learning rate");
            legend_entry(cr, f.x0 + f.w + 86, ly + 36, "learning rate", 0.45, 0.45, 0.45, 1);
        }
    }
    cairo_destroy(cr);
    free(t.values);
    rc = write_image(out, s, &m);
    if (rc == EXIT_OK)
        printf("%s: %d panel%s, %lld epochs -> %s\n", log_path, n, n > 1 ? "s" : "", (long long)t.rows, out);
    return rc;
}

int cli_plot_confusion(const char *out, const int64_t *confusion, int64_t classes, const char *const *names,
                       const char *title)
{
    if (classes < 1 || classes > 100) {
        fprintf(stderr, "nodeflow: --confusion-png draws 1 to 100 classes, not %lld\n", (long long)classes);
        return EXIT_USAGE;
    }
    double cell = classes <= 10 ? CELL : fmax(14, 640.0 / classes), left = 150, top = 80;
    double width = left + classes * cell + 40, height = top + classes * cell + 140;
    image m = {NULL, 0, 0, 0};
    cairo_surface_t *s = surface_for(out, width, height, &m);
    cairo_t *cr = blank_canvas(s);
    int64_t total = 0, right = 0;
    for (int64_t a = 0; a < classes; a++)
        for (int64_t b = 0; b < classes; b++)
            total += confusion[a * classes + b], right += a == b ? confusion[a * classes + b] : 0;
    char text[160];
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    snprintf(text, sizeof text, "%s: accuracy %.2f%% of %lld", title ? title : "confusion matrix",
             total ? 100.0 * (double)right / (double)total : 0.0, (long long)total);
    text_at(cr, width / 2, 24, text, 0.5, 0.5, 15);
    text_at(cr, width / 2, 50, "rows: true class; columns: predicted; shade: the share of the row", 0.5, 0.5, 11);
    for (int64_t a = 0; a < classes; a++) {
        int64_t row = 0;
        for (int64_t b = 0; b < classes; b++)
            row += confusion[a * classes + b];
        for (int64_t b = 0; b < classes; b++) {
            double share = row ? (double)confusion[a * classes + b] / (double)row : 0;
            double x = left + b * cell, y = top + a * cell;
            cairo_set_source_rgb(cr, 1 - 0.85 * share, 1 - 0.6 * share, 1 - 0.2 * share); /* white to blue */
            cairo_rectangle(cr, x, y, cell, cell);
            cairo_fill(cr);
            if (cell >= 28) {
                snprintf(text, sizeof text, "%lld", (long long)confusion[a * classes + b]);
                double shade = share > 0.5 ? 1 : 0.1;
                cairo_set_source_rgb(cr, shade, shade, shade);
                text_at(cr, x + cell / 2, y + cell / 2, text, 0.5, 0.5, cell >= 48 ? 12 : 9);
            }
        }
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, left - 8, top + a * cell + cell / 2, names[a], 1, 0.5, 11);
    }
    for (int64_t b = 0; b < classes; b++) { /* the predicted classes' names, turned */
        cairo_save(cr);
        cairo_translate(cr, left + b * cell + cell / 2, top + classes * cell + 8);
        cairo_rotate(cr, M_PI / 4);
        cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
        text_at(cr, 0, 0, names[b], 0, 0.5, 11);
        cairo_restore(cr);
    }
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    text_at(cr, left + classes * cell / 2, height - 18, "predicted class", 0.5, 0.5, 12);
    cairo_save(cr);
    cairo_translate(cr, 16, top + classes * cell / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, "true class", 0.5, 0.5, 12);
    cairo_restore(cr);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, left, top, classes * cell, classes * cell);
    cairo_stroke(cr);
    cairo_destroy(cr);
    int rc = write_image(out, s, &m);
    if (rc == EXIT_OK)
        fprintf(stderr, "nodeflow: confusion matrix drawn to %s\n", out); /* (stdout may be JSON) */
    return rc;
}

#else /* built without cairo */

static int no_cairo(void)
{
    fprintf(stderr, "nodeflow: this nodeflow was built without cairo; install libcairo2-dev and rebuild "
                    "(Meson feature 'plot') to draw pictures\n");
    return EXIT_RUNTIME;
}

int cli_plot_curves(const char *log_path, const char *out, const char *title)
{
    (void)out, (void)title;
    table t;
    int rc = read_log(log_path, &t); /* (the file's errors first) */
    free(t.values);
    return rc != EXIT_OK ? rc : no_cairo();
}

int cli_plot_confusion(const char *out, const int64_t *confusion, int64_t classes, const char *const *names,
                       const char *title)
{
    (void)out, (void)confusion, (void)classes, (void)names, (void)title;
    return no_cairo();
}

#endif

/* ---- nodeflow plot ------------------------------------------------------------------- */

static const char plot_help[] =
    "usage: nodeflow plot LOG.csv -o FILE.svg|FILE.png [--title TEXT]\n\n"
    "Draws the learning curves of a training from the CSV that 'nodeflow train\n"
    "--log' writes: a panel for the loss and one for each metric that has values\n"
    "(train and validation per epoch), the learning rate on the loss panel's\n"
    "right axis. SVG or PNG by the file's name. ('nodeflow eval --confusion-png'\n"
    "draws a classifier's confusion matrix.)\n";

static int plot_takes_value(const char *name) { return !strcmp(name, "-o") || !strcmp(name, "--title"); }

int cmd_plot(int argc, char **argv)
{
    const char *log = NULL, *out = NULL, *title = NULL, *flag, *v;
    cli_args a = {argc, argv, 1, "plot"};
    while (cli_next(&a, &flag, &v, plot_takes_value)) {
        if (!flag && !log)
            log = v;
        else if (!flag)
            return cli_usage("plot", "one log file, please");
        else if (!strcmp(flag, "--help")) {
            fputs(plot_help, stdout);
            return EXIT_OK;
        } else if (!strcmp(flag, "-o") && v)
            out = v;
        else if (!strcmp(flag, "--title") && v)
            title = v;
        else
            return cli_usage("plot", "unknown option '%s'", flag);
    }
    if (!log || !out)
        return cli_usage("plot", "'nodeflow plot LOG.csv -o FILE.svg'");
    size_t n = strlen(out);
    if (n < 5 || (strcmp(out + n - 4, ".svg") && strcmp(out + n - 4, ".png")))
        return cli_usage("plot", "-o %s: the file's name must end in .svg or .png", out);
    nf_error err;
    if (nf_output_path_check(out, &err) != NF_OK)
        return cli_fail(&err);
    return cli_plot_curves(log, out, title);
}
