/* nodeflow — text buffers, spelling suggestions and file helpers. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/util.h"

void nf_text_printf(nf_text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0 || t->len + (size_t)need + 1 > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 1024;
        while (need >= 0 && cap < t->len + (size_t)need + 1)
            cap *= 2;
        char *data = need < 0 ? NULL : realloc(t->data, cap);
        if (!data) {
            t->failed = 1;
            return;
        }
        t->data = data;
        t->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    t->len += (size_t)need;
}

void nf_text_free(nf_text *t)
{
    free(t->data);
    memset(t, 0, sizeof *t);
}

/* Edit distance counting an adjacent transposition as one edit (optimal
 * string alignment), for words of at most 63 characters. */
static int edit_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n > 63 || m > 63)
        return 99;
    int d[64][64];
    for (size_t i = 0; i <= n; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++)
        for (size_t j = 1; j <= m; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[n][m];
}

const char *nf_suggest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    int best_distance = 3;
    for (int i = 0; candidates && candidates[i]; i++) {
        int d = edit_distance(word, candidates[i]);
        if (d < best_distance && 2 * d < (int)strlen(candidates[i])) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

/* What a file that is not regular is, for messages. */
static const char *file_kind(mode_t mode)
{
    return S_ISDIR(mode) ? "is a directory" : S_ISFIFO(mode) ? "is a FIFO (named pipe)" : S_ISCHR(mode) ? "is a character device"
         : S_ISBLK(mode) ? "is a block device" : S_ISSOCK(mode) ? "is a socket" : "is not a regular file";
}

int nf_open_regular(const char *path, nf_error *err)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        nf_fail(err, NF_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        nf_fail(err, NF_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        nf_fail(err, NF_ERR_IO, "%s: %s; nodeflow reads only regular files", path, file_kind(st.st_mode));
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
        nf_fail(err, NF_ERR_IO, "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

nf_status nf_read_file(const char *path, size_t max_bytes, char **data, size_t *len, nf_error *err)
{
    *data = NULL;
    *len = 0;
    nf_error local;
    err = err ? err : &local;
    int fd = nf_open_regular(path, err);
    if (fd < 0)
        return err->code;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    nf_status st = NF_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n > max_bytes) { /* only a small limit: the first buffer is 4096 bytes */
            st = nf_fail(err, NF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        if (n < cap)
            break;
        if (cap >= max_bytes) {
            st = nf_fail(err, NF_ERR_FORMAT, "%s: larger than %zu bytes", path, max_bytes);
            break;
        }
        cap = cap * 2 < max_bytes ? cap * 2 : max_bytes;
        char *grown = realloc(buf, cap + 1);
        if (!grown)
            free(buf);
        buf = grown;
    }
    if (st == NF_OK && !buf)
        st = nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory reading the file", path);
    if (st == NF_OK && ferror(f))
        st = nf_fail(err, NF_ERR_IO, "%s: read error: %s", path, strerror(errno));
    fclose(f);
    if (st != NF_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return NF_OK;
}

/* ---- output files ------------------------------------------------------ */

#define TEMP_MARK ".nftmp."

/* When this process started (near enough: when the library was loaded).
 * Temporary files older than that were left by a process that died. */
static struct timespec process_start;
__attribute__((constructor)) static void note_process_start(void) { clock_gettime(CLOCK_REALTIME, &process_start); }

/* The directory part of `path` ("." when it has none), in buf. */
static void directory_of(const char *path, char *buf, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(buf, size, ".");
    else if (slash == path)
        snprintf(buf, size, "/");
    else
        snprintf(buf, size, "%.*s", (int)(slash - path), path);
}

static const char *base_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* A link that another user planted in /tmp (say) pointing at our files:
 * the kernel refuses to follow it when opening (fs.protected_symlinks),
 * but a save resolves the link itself, so it applies the same rule: a
 * link in a sticky world-writable directory is followed only when we or
 * the directory's owner own it. */
static int foreign_link_in_shared_directory(const char *path, const struct stat *link)
{
    char dir[4096];
    directory_of(path, dir, sizeof dir);
    struct stat d;
    if (stat(dir, &d) != 0)
        return 1;
    int shared = (d.st_mode & S_ISVTX) && (d.st_mode & S_IWOTH);
    return shared && link->st_uid != geteuid() && link->st_uid != d.st_uid;
}

/* The file a save of `path` replaces or creates: `path` itself, or the
 * file a symbolic link points to (malloc'ed in *target). *existing tells
 * whether it exists, with its status in *st. */
static nf_status output_target(const char *path, char **target, int *existing, struct stat *st, nf_error *err)
{
    *target = NULL;
    *existing = 0;
    if (!path || !*path)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "an output path is empty");
    size_t n = strlen(path);
    if (path[n - 1] == '/')
        return nf_fail(err, NF_ERR_IO, "%s: names a directory; give a file name", path);
    struct stat link;
    if (lstat(path, &link) == 0 && S_ISLNK(link.st_mode)) {
        if (foreign_link_in_shared_directory(path, &link))
            return nf_fail(err, NF_ERR_IO,
                           "%s: a symbolic link of another user in a shared (sticky, world-writable) directory; "
                           "nodeflow does not write through it (as the kernel's protected_symlinks would not)",
                           path);
        *target = realpath(path, NULL);
        if (!*target)
            return nf_fail(err, NF_ERR_IO, "%s: a symbolic link to %s: %s", path,
                           errno == ENOENT ? "a missing file" : "a file that cannot be resolved", strerror(errno));
    } else if (!(*target = strdup(path))) {
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", path);
    }
    if (stat(*target, st) == 0) {
        *existing = 1;
        if (!S_ISREG(st->st_mode))
            return nf_fail(err, NF_ERR_IO, "%s: %s; nodeflow writes only regular files", path, file_kind(st->st_mode));
    } else if (errno != ENOENT) {
        return nf_fail(err, NF_ERR_IO, "%s: %s", path, strerror(errno));
    }
    /* a new file, and the one that replaces an old file, are made there */
    char dir[4096];
    directory_of(*target, dir, sizeof dir);
    struct stat d;
    if (stat(dir, &d) != 0)
        return nf_fail(err, NF_ERR_IO, "%s: the directory %s: %s", path, dir, strerror(errno));
    if (!S_ISDIR(d.st_mode))
        return nf_fail(err, NF_ERR_IO, "%s: %s is not a directory", path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return nf_fail(err, NF_ERR_IO, "%s: cannot create files in %s: %s", path, dir, strerror(errno));
    return NF_OK;
}

nf_status nf_output_path_check(const char *path, nf_error *err)
{
    char *target;
    int existing;
    struct stat st;
    nf_status status = output_target(path, &target, &existing, &st, err);
    free(target);
    return status;
}

int nf_paths_same_file(const char *a, const char *b)
{
    if (!a || !b)
        return 0;
    struct stat sa, sb;
    int ea = stat(a, &sa) == 0, eb = stat(b, &sb) == 0;
    if (ea || eb)
        return ea && eb && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char da[4096], db[4096];
    directory_of(a, da, sizeof da);
    directory_of(b, db, sizeof db);
    char *ra = realpath(da, NULL), *rb = realpath(db, NULL);
    int same = ra && rb && !strcmp(ra, rb) && !strcmp(base_of(a), base_of(b));
    free(ra);
    free(rb);
    return same;
}

/* Whether `name` is "<pid>.<n>" (the tail of our temporary names), with
 * the pid in *pid. */
static int temporary_tail(const char *name, long *pid)
{
    const char *p = name;
    if (!isdigit((unsigned char)*p))
        return 0;
    errno = 0;
    char *end;
    *pid = strtol(p, &end, 10);
    if (errno || *end != '.' || !isdigit((unsigned char)end[1]))
        return 0;
    for (p = end + 1; isdigit((unsigned char)*p); p++)
        ;
    return *p == '\0';
}

/* Whether a temporary file was left by a process that died: it is older
 * than this process, and the process that made it is gone (or is this
 * one, whose pid a container reuses at every start: a file older than us
 * cannot be ours). */
static int left_by_dead_process(const struct stat *st, long pid)
{
    int older = st->st_mtim.tv_sec < process_start.tv_sec ||
                (st->st_mtim.tv_sec == process_start.tv_sec && st->st_mtim.tv_nsec < process_start.tv_nsec);
    if (!older)
        return 0;
    if (pid == (long)getpid())
        return 1;
    return pid > 0 && pid <= INT_MAX && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes "<base>.nftmp.<pid>.<n>" files in the target's directory that a
 * process which died left behind; once per target and process (a run
 * that saves a checkpoint every step reads the directory once). */
static void remove_stale_temporaries(const char *target)
{
    static char cleaned[4096];
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    int done = strcmp(cleaned, target) == 0;
    snprintf(cleaned, sizeof cleaned, "%s", target);
    pthread_mutex_unlock(&lock);
    if (done)
        return;
    char dir[4096];
    directory_of(target, dir, sizeof dir);
    const char *base = base_of(target);
    size_t base_len = strlen(base), mark_len = strlen(TEMP_MARK);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        long pid;
        if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, TEMP_MARK, mark_len) != 0 ||
            !temporary_tail(name + base_len + mark_len, &pid))
            continue;
        char full[8192];
        struct stat st;
        snprintf(full, sizeof full, "%s/%s", dir, name);
        if (lstat(full, &st) == 0 && S_ISREG(st.st_mode) && left_by_dead_process(&st, pid))
            unlink(full);
    }
    closedir(d);
}

/* Creates "<target>.nftmp.<pid>.<n>" exclusively, mode 0666 less the
 * umask, or the mode of the file it will replace; its name in *tmp
 * (malloc'ed) and its descriptor in *fd. */
static nf_status create_temporary(const char *target, int existing, const struct stat *st, char **tmp, int *fd,
                                  nf_error *err)
{
    static unsigned counter;
    size_t size = strlen(target) + 64;
    if (!(*tmp = malloc(size)))
        return nf_fail(err, NF_ERR_NO_MEMORY, "%s: out of memory", target);
    nf_status status = NF_ERR_IO;
    int attempt;
    for (attempt = 0; attempt < 100; attempt++) {
        snprintf(*tmp, size, "%s" TEMP_MARK "%ld.%u", target, (long)getpid(),
                 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
        *fd = open(*tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (*fd < 0 && errno == EEXIST)
            continue;
        if (*fd < 0) {
            status = nf_fail(err, NF_ERR_IO, "%s: cannot create a temporary file beside it: %s", target,
                             strerror(errno));
            break;
        }
        if (existing && fchmod(*fd, st->st_mode & 0777) != 0) {
            status = nf_fail(err, NF_ERR_IO, "%s: cannot give the new file the old one's mode: %s", target,
                             strerror(errno));
            close(*fd);
            unlink(*tmp);
            break;
        }
        return NF_OK;
    }
    if (attempt == 100)
        nf_fail(err, status, "%s: no free temporary name beside it", target);
    free(*tmp);
    *tmp = NULL;
    return status;
}

/* The rename is durable once the directory is synced (best effort: some
 * file systems refuse to sync a directory). */
static void sync_directory(const char *target)
{
    char dir[4096];
    directory_of(target, dir, sizeof dir);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* A writer's failure names the path and errno's text when it did not. */
static nf_status name_the_path(const char *path, nf_status st, int saved_errno, nf_error *err)
{
    if (st != NF_OK && err && strncmp(err->message, path, strlen(path)) != 0) {
        char message[sizeof err->message];
        snprintf(message, sizeof message, "%s", err->message);
        if (st == NF_ERR_IO && saved_errno && !strstr(message, strerror(saved_errno)))
            nf_fail(err, st, "%s: %s: %s", path, message, strerror(saved_errno));
        else
            nf_fail(err, st, "%s: %s", path, message);
    }
    return st;
}

nf_status nf_write_atomic_with(const char *path, nf_status (*write)(FILE *f, void *ctx, nf_error *err),
                               void *ctx, nf_error *err)
{
    char *target, *tmp = NULL;
    int existing;
    struct stat old;
    nf_status st = output_target(path, &target, &existing, &old, err);
    if (st != NF_OK) {
        free(target);
        return st;
    }
    remove_stale_temporaries(target);
    int fd = -1;
    if ((st = create_temporary(target, existing, &old, &tmp, &fd, err)) != NF_OK) {
        free(target);
        return st;
    }
    FILE *f = fdopen(fd, "wb");
    errno = 0;
    st = f ? write(f, ctx, err) : nf_fail(err, NF_ERR_IO, "%s: %s", tmp, strerror(errno));
    st = name_the_path(path, st, errno, err);
    if (st == NF_OK && (fflush(f) != 0 || ferror(f)))
        st = nf_fail(err, NF_ERR_IO, "%s: write failed: %s", path, strerror(errno ? errno : EIO));
    if (st == NF_OK && fsync(fd) != 0)
        st = nf_fail(err, NF_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (f ? fclose(f) != 0 : close(fd) != 0)
        if (st == NF_OK)
            st = nf_fail(err, NF_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == NF_OK && rename(tmp, target) != 0)
        st = nf_fail(err, NF_ERR_IO, "%s: cannot rename the temporary file into place: %s", path, strerror(errno));
    if (st == NF_OK)
        sync_directory(target);
    else
        unlink(tmp);
    free(tmp);
    free(target);
    return st;
}

typedef struct bytes {
    const void *data;
    size_t len;
} bytes;

static nf_status write_bytes(FILE *f, void *ctx, nf_error *err)
{
    const bytes *b = ctx;
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len)
        return nf_fail(err, NF_ERR_IO, "write failed: %s", strerror(errno ? errno : EIO));
    return NF_OK;
}

typedef struct stream_writer {
    int (*write)(FILE *f, void *ctx);
    void *ctx;
} stream_writer;

static nf_status write_stream(FILE *f, void *ctx, nf_error *err)
{
    const stream_writer *w = ctx;
    return w->write(f, w->ctx) == 0 ? NF_OK : nf_fail(err, NF_ERR_IO, "write failed: %s", strerror(errno ? errno : EIO));
}

nf_status nf_file_write_stream(const char *path, int (*write)(FILE *f, void *ctx), void *ctx, nf_error *err)
{
    if (!path || !write)
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_file_write_stream: NULL argument");
    stream_writer w = {write, ctx};
    return nf_write_atomic_with(path, write_stream, &w, err);
}

nf_status nf_file_write(const char *path, const void *data, size_t len, nf_error *err)
{
    if (!path || (!data && len))
        return nf_fail(err, NF_ERR_INVALID_ARGUMENT, "nf_file_write: NULL argument");
    bytes b = {data, len};
    return nf_write_atomic_with(path, write_bytes, &b, err);
}

int nf_format_shape(char *buf, size_t size, const nf_shape *s)
{
    if (s->rank == 0)
        return snprintf(buf, size, "scalar") < (int)size;
    size_t used = 0;
    for (int i = 0; i < s->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "x" : "", (long long)s->dim[i]);
    return used < size;
}

uint32_t nf_read_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t nf_read_le64(const unsigned char *p) { return (uint64_t)nf_read_le32(p) | (uint64_t)nf_read_le32(p + 4) << 32; }

void nf_format_double(char *buf, size_t size, double v)
{
    for (int digits = 6; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static int hex_digit(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int nf_hex_decode(const char *hex, unsigned char *out, size_t n)
{
    if (!hex || strlen(hex) != 2 * n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_digit((unsigned char)hex[2 * i]), lo = hex_digit((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return 0;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 1;
}
