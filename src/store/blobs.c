/* blobs.c — content-addressed files under DATA/documents/ (see store/blobs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "store/blobs.h"
#include "store/db_internal.h"

#define BLOB_PATH_MAX 4096

int store_blob_name_valid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != 64)
        return 0;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

/* The data directory's documents folder and the content's subdirectory and file:
 * dir = DATA/documents/ab, path = DATA/documents/ab/cdef... The data directory is the one the database
 * file lives in, so every connection (server thread, command line, sync) finds the same store. */
static int blob_paths(struct db *db, const char *sha256, char *top, char *dir, char *path, struct err *e)
{
    const char *file = sqlite3_db_filename(db->conn, "main");
    const char *slash;
    int n;

    if (!store_blob_name_valid(sha256))
        return err_set(e, ERR_INTERNAL, "invalid_blob_name", "a document content name is not a SHA-256");
    if (file == NULL || file[0] == '\0' || (slash = strrchr(file, '/')) == NULL)
        return err_set(e, ERR_INTERNAL, "no_data_directory", "the database has no data directory for documents");
    n = snprintf(top, BLOB_PATH_MAX, "%.*s/%s", (int)(slash - file), file, BLOB_DIR);
    if (n < 0 || n >= BLOB_PATH_MAX - 72)
        return err_set(e, ERR_INTERNAL, "path_too_long", "the data directory path is too long");
    snprintf(dir, BLOB_PATH_MAX, "%s/%.2s", top, sha256);
    snprintf(path, BLOB_PATH_MAX, "%s/%s", dir, sha256 + 2);
    return 0;
}

static int make_dir(const char *dir, struct err *e)
{
    if (mkdir(dir, 0700) == 0 || errno == EEXIST)
        return 0;
    log_error("documents: cannot create a directory of the document store: %s", strerror(errno));
    return err_set(e, ERR_INTERNAL, "storage_error", "cannot create the document store directory: %s",
                   strerror(errno));
}

/* fsync a directory, so that a rename in it survives a power cut. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    ssize_t w;

    while (len > 0) {
        w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int store_blob_has(struct db *db, const char *sha256, uint64_t size, struct err *e)
{
    char top[BLOB_PATH_MAX], dir[BLOB_PATH_MAX], path[BLOB_PATH_MAX];
    struct stat st;

    if (blob_paths(db, sha256, top, dir, path, e) < 0)
        return -1;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

int store_blob_put(struct db *db, const char *sha256, const void *data, size_t len, struct err *e)
{
    char top[BLOB_PATH_MAX], dir[BLOB_PATH_MAX], path[BLOB_PATH_MAX], tmp[BLOB_PATH_MAX];
    int fd, has, saved;

    if ((has = store_blob_has(db, sha256, len, e)) != 0)
        return has < 0 ? -1 : 0;
    if (blob_paths(db, sha256, top, dir, path, e) < 0 || make_dir(top, e) < 0 || make_dir(dir, e) < 0)
        return -1;
    if (snprintf(tmp, sizeof(tmp), "%s/.tmp-XXXXXX", dir) >= (int)sizeof(tmp))
        return err_set(e, ERR_INTERNAL, "path_too_long", "the data directory path is too long");
    fd = mkostemp(tmp, O_CLOEXEC);      /* mode 0600 */
    if (fd < 0)
        goto fail;
    if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) < 0 || fsync(fd) != 0) {
        saved = errno;
        close(fd);
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        saved = errno;
        unlink(tmp);
        errno = saved;
        goto fail;
    }
    if (sync_dir(dir) != 0)
        goto fail;
    return 0;
fail:
    log_error("documents: cannot write to the document store: %s", strerror(errno));
    return err_set(e, ERR_INTERNAL, "storage_error", "cannot store the document's content: %s", strerror(errno));
}

int store_blob_open(struct db *db, const char *sha256, int *fd, uint64_t *size, struct err *e)
{
    char top[BLOB_PATH_MAX], dir[BLOB_PATH_MAX], path[BLOB_PATH_MAX];
    struct stat st;

    *fd = -1;
    *size = 0;
    if (blob_paths(db, sha256, top, dir, path, e) < 0)
        return -1;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (*fd < 0) {
        if (errno == ENOENT)
            return 0;
        log_error("documents: cannot open a stored document: %s", strerror(errno));
        return err_set(e, ERR_INTERNAL, "storage_error", "cannot read the document's content: %s", strerror(errno));
    }
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(*fd);
        *fd = -1;
        return err_set(e, ERR_INTERNAL, "storage_error", "the document's content is not a regular file");
    }
    *size = (uint64_t)st.st_size;
    return 1;
}
