/* fuzz_batch.c — libFuzzer target for the sync batch decoder and merge: the input given to
 * sync_batch_apply() on one real node made once in a temporary directory, as a peer's pull answer or push
 * would give it.
 *
 * An input whose first byte is even (a zstd frame starts with 0x28) is the batch itself, so the frame
 * checks (magic, declared size, one frame, content checksum, bombs) see raw bytes; an odd first byte
 * ('{' is 0x7b) means the whole input is JSON to wrap in a checksummed zstd frame first, as a sender
 * would, so that the fuzzer explores the JSON shape and the merge behind the frame check.
 *
 * Besides "no crash, no leak, no hang", it checks sync.h's promises: a refused batch applies nothing
 * (change, quarantine and conflict counts unchanged), comes back with a code and a message, and leaves no
 * transaction open; an accepted one adds exactly the changes it reports as applied, accounts for every
 * change it received, and is idempotent (applied again, it adds nothing and still succeeds).
 *
 * Seed corpus: SANAD_FUZZ_BATCH_SEEDS=DIR build-fuzz/fuzz_batch -runs=0 writes real batches (built by
 * sync_batch_build() from a node with registered, edited and deleted patients, as JSON and as frames)
 * and hand-made edge cases (quarantine, unknown table, concurrent edits, an update before its create,
 * duplicates) into DIR, then exits; fuzz/corpus/fuzz_batch/ holds its output.
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zstd.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/hlc.h"
#include "core/id.h"
#include "core/log.h"
#include "core/util.h"
#include "services/caller.h"
#include "services/changelog.h"
#include "services/patients.h"
#include "services/sites.h"
#include "services/sync.h"
#include "store/changes.h"
#include "store/db.h"
#include "store/sync.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER_ID "01934a3c-0000-7000-8000-00000000feed"     /* the sender, as a session would name it */

static char base_dir[256];
static struct db *db;
static ZSTD_CCtx *cctx;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    db_close(db);
    db = NULL;
    ZSTD_freeCCtx(cctx);
    cctx = NULL;
    if (base_dir[0])
        nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((noreturn)) static void die(const char *what, const struct err *e)
{
    fprintf(stderr, "fuzz_batch: %s: %s\n", what, e ? e->message : "");
    abort();
}

/* A new node in base_dir/name, opened. */
static struct db *make_node(const char *name)
{
    struct node_init_options o = { NULL, "Fuzz clinic", "en,ar", "admin", "fuzz-admin-password-1" };
    char dir[300], node_id[ID_LEN];
    struct db *d;
    struct err e;

    snprintf(dir, sizeof(dir), "%s/%s", base_dir, name);
    o.dir = dir;
    err_clear(&e);
    if (node_init(&o, node_id, &e) < 0)
        die("node_init", &e);
    if (db_open(dir, 0, &d, &e) < 0)
        die("db_open", &e);
    return d;
}

/* Wrap n bytes of JSON in one zstd frame with its content size and a content checksum, as
 * sync_batch_build() does. 0, or -1 when zstd fails (it should not). */
static int frame(const void *src, size_t n, struct buf *out)
{
    size_t bound = ZSTD_compressBound(n), z;
    char *tmp = malloc(bound);

    if (tmp == NULL)
        return -1;
    ZSTD_CCtx_reset(cctx, ZSTD_reset_session_only);
    z = ZSTD_compress2(cctx, tmp, bound, src, n);
    if (ZSTD_isError(z)) {
        free(tmp);
        return -1;
    }
    buf_reset(out);
    if (buf_append(out, tmp, z) < 0) {
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* ---- the seed corpus ------------------------------------------------------------------------------ */

static void write_seed(const char *dir, const char *name, const void *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
        die("cannot write a seed", NULL);
    printf("seed %s (%zu bytes)\n", path, n);
}

/* The JSON inside a frame made by sync_batch_build(). */
static char *unframe(const struct buf *b, size_t *n)
{
    unsigned long long size = ZSTD_getFrameContentSize(b->data, b->len);
    char *raw;

    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || (raw = malloc(size + 1)) == NULL)
        die("a built batch is not a frame with its size", NULL);
    *n = ZSTD_decompress(raw, size, b->data, b->len);
    if (ZSTD_isError(*n))
        die("a built batch does not decompress", NULL);
    return raw;
}

static json_t *patient_input(const char *given, const char *family, const char *sex, const char *unhcr)
{
    json_t *p = json_pack("{s:s,s:s,s:s,s:[s],s:s}", "given_name", given, "family_name", family, "sex", sex,
                          "languages", "ar", "camp", "Zaatari");

    if (unhcr)
        json_object_set_new(p, "identifiers", json_pack("{s:s}", "unhcr", unhcr));
    return p;
}

/* Real batches of a node that registered, edited and deleted patients; then hand-made edge cases. */
static void write_seeds(const char *dir)
{
    static const char *const names[][4] = {
        { "Amira", "Haddad", "female", "123-45C67890123" }, { "Karim", "Nasser", "male", NULL },
        { "Layla", "Hussein", "female", NULL },             { "Yusuf", "Abdi", "male", "555-12C00000001" },
        { "Olena", "Kovalenko", "female", NULL },           { "Samir", "Haddad", "male", NULL },
    };
    char ids[20][ID_LEN], node[ID_LEN], other[ID_LEN], name[64], text[4096];
    struct db *src = make_node("source");
    struct caller who;
    struct buf out;
    struct err e;
    json_t *in, *p, *cursor = NULL, *vector;
    char *raw;
    size_t i, n;
    int has_more, k, rc;
    int64_t now = hlc_make(now_ms(), 0);
    int64_t ahead = hlc_make(4102444800000LL, 0);      /* 2100: quarantined for as long as this seed lives */

    err_clear(&e);
    caller_local(&who, "fuzz");
    if (caller_local_sites(src, &who, NULL, &e) < 0)
        die("caller_local_sites", &e);
    for (i = 0; i < 20; i++) {
        in = patient_input(names[i % 6][0], names[i % 6][1], names[i % 6][2], i < 6 ? names[i][3] : NULL);
        p = patients_create(src, &who, in, &e);
        if (p == NULL)
            die("patients_create", &e);
        snprintf(ids[i], ID_LEN, "%s", json_string_value(json_object_get(p, "id")));
        json_decref(p);
        json_decref(in);
    }
    in = json_pack("{s:s,s:s}", "camp", "Azraq", "birth_date", "1990-04-01");
    if ((p = patients_update(src, &who, ids[1], in, &e)) == NULL)
        die("patients_update", &e);
    json_decref(p);
    json_decref(in);
    if (patients_delete(src, &who, ids[2], &e) < 0)
        die("patients_delete", &e);

    /* the whole log in one batch, as JSON and as the frame itself */
    buf_init(&out, SYNC_MAX_COMPRESSED_BYTES);
    if (sync_batch_build(src, NULL, NULL, SYNC_DEFAULT_MAX_BYTES, &out, &has_more, &cursor, &e) < 0)
        die("sync_batch_build", &e);
    json_decref(cursor);
    write_seed(dir, "frame_whole_log.zst", out.data, out.len);
    raw = unframe(&out, &n);
    write_seed(dir, "whole_log.json", raw, n);
    free(raw);
    /* ... and in batches of 4 KiB (the smallest), resuming from each one's cursor */
    vector = json_object();
    for (k = 0; k < 3; k++) {
        if ((rc = sync_batch_build(src, NULL, vector, 4096, &out, &has_more, &cursor, &e)) < 0)
            die("sync_batch_build", &e);
        if (rc == 0) {
            json_decref(cursor);
            break;
        }
        raw = unframe(&out, &n);
        snprintf(name, sizeof(name), "small_%d.json", k + 1);
        write_seed(dir, name, raw, n);
        free(raw);
        json_object_update(vector, cursor);
        json_decref(cursor);
    }
    json_decref(vector);
    buf_free(&out);
    if (changelog_node_id(src, node, &e) < 0)
        die("changelog_node_id", &e);
    db_close(src);

    /* hand-made: one origin per case, so that seeds do not mask each other */
    id_new(other);
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{\"%s\":2},\"vector\":{},"
        "\"changes\":[[\"%s\",1,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"site_id\":\"%s\",\"given_name\":\"Future\"},{}],"
        "[\"%s\",2,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"camp\":\"Moria\"},{}]]}",
        other, other, other, ids[0], (long long)ahead, node, other, ids[0],
        (long long)now);
    write_seed(dir, "quarantine_clock_ahead.json", text, n);
    id_new(other);
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":true,\"cursor\":{\"%s\":1},\"vector\":{\"%s\":1},"
        "\"changes\":[[\"%s\",1,\"visits\",\"v-1\",%lld,{\"patient_id\":\"%s\",\"note\":[1,{\"a\":null}]},{}]]}",
        other, other, other, other, (long long)now, ids[0]);
    write_seed(dir, "unknown_table.json", text, n);
    id_new(other);
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{\"%s\":3},\"vector\":{},"
        "\"changes\":[[\"%s\",1,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"camp\":\"Kakuma\",\"phones\":[\"+962791234567\"]},"
        "{\"camp\":[%lld,\"%s\"]}],"
        "[\"%s\",2,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"camp\":\"Dadaab\"},{\"camp\":[%lld,\"%s\"]}],"
        "[\"%s\",3,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"deleted\":true},{}]]}",
        other, other, other, ids[1], (long long)now + 5, (long long)now - 99, node, other, ids[1],
        (long long)now + 6, (long long)now + 5, other, other, ids[3], (long long)now + 7);
    write_seed(dir, "concurrent_edits.json", text, n);
    id_new(other);
    {
        char row[ID_LEN];

        id_new(row);
        n = (size_t)snprintf(text, sizeof(text),
            "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{\"%s\":2},\"vector\":{},"
            "\"changes\":[[\"%s\",2,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"family_name\":\"Late\"},{}],"
            "[\"%s\",1,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"site_id\":\"%s\",\"given_name\":\"Early\",\"sex\":\"male\","
            "\"identifiers.unhcr\":\"123-45C67890123\",\"custom.block\":\"a1\"},{}],"
            "[\"%s\",1,\"" PATIENT_TABLE "\",\"%s\",%lld,{\"given_name\":\"Again\"},{}]]}",
            other, other, other, row, (long long)now + 9, other, row, (long long)now + 8, node, other, row,
            (long long)now + 8);
        write_seed(dir, "update_before_create_duplicate.json", text, n);
    }
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{},\"vector\":{},\"changes\":[]}",
        node);
    write_seed(dir, "empty.json", text, n);
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/2\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{},\"changes\":[]}", node);
    write_seed(dir, "future_format.json", text, n);
    n = (size_t)snprintf(text, sizeof(text),
        "{\"format\":\"sanad-batch/1\",\"node\":\"%s\",\"has_more\":false,\"cursor\":{\"%s\":-1},"
        "\"changes\":[[\"%s\",0,\"" PATIENT_TABLE "\",\"x\",1,{},{}]]}", node, node, node);
    write_seed(dir, "malformed.json", text, n);
}

/* ---- the target -------------------------------------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *seeds = getenv("SANAD_FUZZ_BATCH_SEEDS");

    (void)argc;
    (void)argv;
    /* tmpfs when there is one: every accepted batch is a synchronous commit */
    snprintf(base_dir, sizeof(base_dir), "%s/sanad-fuzz-batch.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(base_dir) == NULL) {
        base_dir[0] = '\0';
        die("mkdtemp", NULL);
    }
    atexit(cleanup);
    cctx = ZSTD_createCCtx();
    if (cctx == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1))
        || ZSTD_isError(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)))
        die("zstd", NULL);
    log_set_level(LOG_ERROR);
    if (seeds) {
        write_seeds(seeds);
        exit(0);
    }
    db = make_node("node");
    return 0;
}

/* An error must come back with a code and a terminated message. */
static void check_err(const struct err *e)
{
    if (e->kind == ERR_NONE || e->code[0] == '\0' || memchr(e->code, '\0', sizeof(e->code)) == NULL
        || memchr(e->message, '\0', sizeof(e->message)) == NULL)
        __builtin_trap();
}

/* What applying may change: the log, the quarantine and the open conflicts. */
struct counts {
    int64_t changes, quarantined, conflicts;
};

static void count(struct counts *c)
{
    struct err e;

    err_clear(&e);
    if (store_change_count(db, &c->changes, &e) < 0 || store_quarantine_count(db, &c->quarantined, &e) < 0
        || store_conflicts_count_open(db, &c->conflicts, &e) < 0)
        die("count", &e);
}

static void apply(const void *batch, size_t len)
{
    struct sync_report r, again;
    struct counts before, after, after2;
    json_t *cursor = NULL;
    struct err e;
    int has_more = -1;

    count(&before);
    err_clear(&e);
    if (sync_batch_apply(db, batch, len, PEER_ID, &r, &cursor, &has_more, &e) < 0) {
        check_err(&e);
        count(&after);
        if (cursor != NULL || db_in_transaction(db) || memcmp(&before, &after, sizeof(before)) != 0) {
            fprintf(stderr, "a refused batch (%s: %s) changed the node: changes %lld -> %lld, quarantined %lld -> "
                            "%lld, conflicts %lld -> %lld\n", e.code, e.message, (long long)before.changes,
                    (long long)after.changes, (long long)before.quarantined, (long long)after.quarantined,
                    (long long)before.conflicts, (long long)after.conflicts);
            __builtin_trap();
        }
        if (e.kind != ERR_INVALID && e.kind != ERR_TOO_LARGE) {
            /* the node itself failed on hostile input: a storage or merge error the decoder let through */
            fprintf(stderr, "a batch was refused as a failure of this node (kind %d) %s: %s\n", (int)e.kind, e.code,
                    e.message);
            __builtin_trap();
        }
        return;
    }
    count(&after);
    if (!json_is_object(cursor) || (has_more != 0 && has_more != 1) || db_in_transaction(db)
        || after.changes - before.changes != r.applied || r.received != r.applied + r.duplicates + r.quarantined
        || r.applied < 0 || r.duplicates < 0 || r.quarantined < 0 || r.conflicts < 0
        || after.quarantined - before.quarantined > r.quarantined) {
        fprintf(stderr, "an accepted batch does not add up: received %lld, applied %lld, duplicates %lld, "
                        "quarantined %lld; changes %lld -> %lld\n", (long long)r.received, (long long)r.applied,
                (long long)r.duplicates, (long long)r.quarantined, (long long)before.changes,
                (long long)after.changes);
        __builtin_trap();
    }
    json_decref(cursor);
    cursor = NULL;

    /* idempotent: the same batch again adds nothing (a re-sent batch after a cut link) */
    err_clear(&e);
    if (sync_batch_apply(db, batch, len, PEER_ID, &again, NULL, NULL, &e) < 0) {
        fprintf(stderr, "a batch accepted once is refused the second time: %s: %s\n", e.code, e.message);
        __builtin_trap();
    }
    count(&after2);
    if (again.applied != 0 || again.conflicts != 0 || again.received != r.received
        || memcmp(&after, &after2, sizeof(after)) != 0) {
        fprintf(stderr, "a batch applied twice changed the node again: applied %lld, conflicts %lld, changes %lld "
                        "-> %lld\n", (long long)again.applied, (long long)again.conflicts, (long long)after.changes,
                (long long)after2.changes);
        __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf z;

    if (size > 0 && (data[0] & 1)) {
        buf_init(&z, SYNC_MAX_COMPRESSED_BYTES);
        if (frame(data, size, &z) < 0)
            __builtin_trap();
        apply(z.data, z.len);
        buf_free(&z);
    } else {
        apply(data, size);
    }
    return 0;
}
