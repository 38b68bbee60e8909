/* fuzz_patient_input.c — libFuzzer target for patient registration input: the bytes as a request body
 * (json_parse_object, json_check_fields against patients_input_fields), then duplicate matching,
 * registration, a search, a repeated change and sometimes a delete, against one real node made once in
 * a temporary directory; the raw bytes also go through the phone and identifier normalisers.
 *
 * Besides "no crash, no leak", it checks the services' promises: normalised phones and identifiers keep
 * their shape and bounds; errors carry a code and a terminated message; a match lists candidates with a
 * score in [0, 1] and known reasons; a registered record reads back with its id and site; registering
 * twice the same identifiers is refused; and an input accepted for a new record is accepted again as a
 * change of that record. The node's database grows with every accepted input, which is the point: the
 * search and duplicate paths see many records.
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/id.h"
#include "core/json.h"
#include "core/log.h"
#include "services/caller.h"
#include "services/patients.h"
#include "services/regfields.h"
#include "services/sites.h"
#include "store/db.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 4096      /* bodies beyond this add time, not paths */

static char base_dir[256];
static char node_dir[300];
static struct db *db;
static struct caller who;

/* A site configuration that exercises every custom field type and a site-defined identifier type; no
 * field is required, so that most drafts register. */
static const char site_config[] =
    "{\"identifier_types\":[\"ration_card\"],\"fields\":["
    "{\"key\":\"ration\",\"type\":\"text\",\"label\":{\"en\":\"Ration book\"},\"searchable\":true,\"max_length\":40},"
    "{\"key\":\"block\",\"type\":\"select\",\"label\":{\"en\":\"Block\"},"
    "\"options\":[{\"code\":\"a1\",\"label\":{\"en\":\"A1\"}},{\"code\":\"b2\",\"label\":{\"en\":\"B2\"}}]},"
    "{\"key\":\"household\",\"type\":\"number\",\"label\":{\"en\":\"Household\"},\"min\":1,\"max\":40},"
    "{\"key\":\"arrival\",\"type\":\"date\",\"label\":{\"en\":\"Arrival\"}},"
    "{\"key\":\"pregnant\",\"type\":\"boolean\",\"label\":{\"en\":\"Pregnant\"}}]}";

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
    if (base_dir[0])
        nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((noreturn)) static void die(const char *what, const struct err *e)
{
    fprintf(stderr, "fuzz_patient_input: %s: %s\n", what, e ? e->message : "");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct node_init_options o = { NULL, "Fuzz clinic", "en,ar", "admin", "fuzz-admin-password-1" };
    char node_id[ID_LEN];
    json_t *config, *out;
    struct err e;

    (void)argc;
    (void)argv;
    /* tmpfs when there is one: every registration is a synchronous commit */
    snprintf(base_dir, sizeof(base_dir), "%s/sanad-fuzz-patient.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(base_dir) == NULL) {
        base_dir[0] = '\0';
        die("mkdtemp", NULL);
    }
    atexit(cleanup);
    snprintf(node_dir, sizeof(node_dir), "%s/node", base_dir);
    o.dir = node_dir;
    err_clear(&e);
    if (node_init(&o, node_id, &e) < 0)
        die("node_init", &e);
    if (db_open(node_dir, 0, &db, &e) < 0)
        die("db_open", &e);
    caller_local(&who, "fuzz");
    if (caller_local_sites(db, &who, NULL, &e) < 0 || who.nsites != 1)
        die("caller_local_sites", &e);
    config = json_loads(site_config, 0, NULL);
    if (config == NULL)
        die("site config", NULL);
    out = regfields_put(db, &who, who.sites[0], config, &e);
    if (out == NULL)
        die("regfields_put", &e);
    json_decref(out);
    json_decref(config);
    log_set_level(LOG_ERROR);
    return 0;
}

/* An error must come back with a code and a terminated message. */
static void check_err(const struct err *e)
{
    if (e->kind == ERR_NONE || e->code[0] == '\0' || memchr(e->code, '\0', sizeof(e->code)) == NULL
        || memchr(e->message, '\0', sizeof(e->message)) == NULL)
        __builtin_trap();
}

/* The normalisers on arbitrary text: bounded output of the promised shape. */
static void check_normalisers(const char *s)
{
    char phone[24], small[8], id[72], tiny[1];
    size_t i, n;

    if (patients_normalise_phone(s, phone, sizeof(phone)) == 0) {
        n = strlen(phone);
        if (n >= sizeof(phone) || n < 6)
            __builtin_trap();
        for (i = phone[0] == '+' ? 1 : 0; i < n; i++)
            if (phone[i] < '0' || phone[i] > '9')
                __builtin_trap();
        if (n - (phone[0] == '+') < 6 || n - (phone[0] == '+') > 15)
            __builtin_trap();
    }
    if (patients_normalise_phone(s, small, sizeof(small)) == 0)
        __builtin_trap();   /* too small a buffer is refused, never overrun */
    patients_normalise_identifier(s, id, sizeof(id));
    n = strlen(id);
    if (n >= sizeof(id))
        __builtin_trap();
    for (i = 0; i < n; i++)
        if (strchr(" -./_", id[i]) || (id[i] >= 'a' && id[i] <= 'z'))
            __builtin_trap();
    patients_normalise_identifier(s, tiny, sizeof(tiny));
    if (tiny[0] != '\0')
        __builtin_trap();
}

static void check_match(const json_t *m)
{
    static const char *const known[] = { "same_identifier", "same_phone", "similar_name", "compatible_birth_date",
                                         "close_birth_date", "same_sex" };
    json_t *item, *r;
    size_t i, j, k, ok;
    double score;

    if (!json_is_array(json_object_get(m, "items")))
        __builtin_trap();
    json_array_foreach(json_object_get(m, "items"), i, item) {
        score = json_number_value(json_object_get(item, "score"));
        if (!json_is_number(json_object_get(item, "score")) || score < 0 || score > 1
            || !json_is_string(json_object_get(json_object_get(item, "patient"), "id")))
            __builtin_trap();
        json_array_foreach(json_object_get(item, "reasons"), j, r) {
            for (ok = 0, k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                ok |= json_is_string(r) && strcmp(json_string_value(r), known[k]) == 0;
            if (!ok)
                __builtin_trap();
        }
    }
}

static void search_for(const char *q)
{
    struct patient_query query = { 0 };
    struct err e;
    json_t *out;

    query.q = q;
    query.limit = 5;
    err_clear(&e);
    out = patients_search(db, &who, &query, &e);
    if (out == NULL)
        check_err(&e);
    else if (!json_is_array(json_object_get(out, "items")) || json_array_size(json_object_get(out, "items")) > 5)
        __builtin_trap();
    json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e;
    json_t *obj, *m, *p, *again, *u;
    const char *id;
    char *text;

    if (size > INPUT_MAX)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    check_normalisers(text);
    if (size <= 200)
        search_for(text);   /* a query string is bytes too */
    free(text);

    err_clear(&e);
    obj = json_parse_object((const char *)data, size, &e);
    if (obj == NULL) {
        check_err(&e);
        return 0;
    }
    err_clear(&e);
    if (json_check_fields(obj, patients_input_fields, &e) < 0) {
        check_err(&e);
        json_decref(obj);
        return 0;
    }

    err_clear(&e);
    m = patients_match(db, &who, obj, &e);
    if (m == NULL)
        check_err(&e);
    else
        check_match(m);
    json_decref(m);

    err_clear(&e);
    p = patients_create(db, &who, obj, &e);
    if (p == NULL) {
        check_err(&e);
        json_decref(obj);
        return 0;
    }
    id = json_string_value(json_object_get(p, "id"));
    if (id == NULL || !id_valid(id) || strcmp(json_string_value(json_object_get(p, "site_id")), who.sites[0]) != 0)
        __builtin_trap();

    /* it reads back */
    err_clear(&e);
    again = patients_get(db, &who, id, &e);
    if (again == NULL || !json_equal(json_object_get(again, "given_name"), json_object_get(p, "given_name")))
        __builtin_trap();
    json_decref(again);

    /* the same identifiers cannot be registered twice */
    if (json_object_size(json_object_get(p, "identifiers")) > 0) {
        err_clear(&e);
        again = patients_create(db, &who, obj, &e);
        if (again != NULL || strcmp(e.code, "identifier_taken") != 0)
            __builtin_trap();
    }

    /* what was accepted for a new record is accepted as a change of it */
    err_clear(&e);
    u = patients_update(db, &who, id, obj, &e);
    if (u == NULL) {
        fprintf(stderr, "update refused what create accepted: %s %s\n", e.code, e.message);
        __builtin_trap();
    }
    json_decref(u);

    search_for(json_string_value(json_object_get(p, "given_name")));

    if (size % 3 == 0) {
        err_clear(&e);
        if (patients_delete(db, &who, id, &e) < 0)
            __builtin_trap();
        err_clear(&e);
        again = patients_get(db, &who, id, &e);
        if (again != NULL || e.kind != ERR_NOT_FOUND)
            __builtin_trap();
    }
    json_decref(p);
    json_decref(obj);
    return 0;
}
