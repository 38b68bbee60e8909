/* fuzz_csv_import.c — libFuzzer target for `sanad import patients`: the bytes are written to a file and
 * imported with cmd_import() (src/cmd/import.c, the same function the binary runs) into one node made
 * once in a temporary directory. Header, --map, quoting, BOM, row and cell limits, the all-or-nothing
 * rollback and --skip-bad all take hostile input here; the target must never crash or leak, whatever
 * the exit status.
 *
 * The command prints its report on stdout and stderr; the initializer points the C streams stdout and
 * stderr at /dev/null rather than freopen()ing them, so that file descriptor 2 stays open for libFuzzer's
 * and the sanitizers' own reports (which would otherwise vanish with the crash they describe).
 */
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/err.h"
#include "core/id.h"
#include "core/log.h"
#include "services/caller.h"
#include "services/regfields.h"
#include "services/sites.h"
#include "store/db.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX 16384     /* a few hundred rows; more adds time, not paths */

static char base_dir[256];
static char node_dir[300];
static char csv_path[300];

/* Custom fields of every type, so that custom.KEY columns reach the typed cell conversion. */
static const char site_config[] =
    "{\"identifier_types\":[\"ration_card\"],\"fields\":["
    "{\"key\":\"ration\",\"type\":\"text\",\"label\":{\"en\":\"Ration book\"},\"searchable\":true},"
    "{\"key\":\"block\",\"type\":\"select\",\"label\":{\"en\":\"Block\"},"
    "\"options\":[{\"code\":\"a1\",\"label\":{\"en\":\"A1\"}}]},"
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
    if (base_dir[0])
        nftw(base_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

__attribute__((noreturn)) static void die(const char *what, const struct err *e)
{
    fprintf(stderr, "fuzz_csv_import: %s: %s\n", what, e ? e->message : "");
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct node_init_options o = { NULL, "Fuzz clinic", "en", "admin", "fuzz-admin-password-1" };
    char node_id[ID_LEN];
    struct caller who;
    struct db *db = NULL;
    json_t *config, *out;
    FILE *devnull;
    struct err e;

    (void)argc;
    (void)argv;
    /* tmpfs when there is one: an import that succeeds is a synchronous commit */
    snprintf(base_dir, sizeof(base_dir), "%s/sanad-fuzz-csv.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(base_dir) == NULL) {
        base_dir[0] = '\0';
        die("mkdtemp", NULL);
    }
    atexit(cleanup);
    snprintf(node_dir, sizeof(node_dir), "%s/node", base_dir);
    snprintf(csv_path, sizeof(csv_path), "%s/input.csv", base_dir);
    o.dir = node_dir;
    err_clear(&e);
    if (node_init(&o, node_id, &e) < 0)
        die("node_init", &e);
    if (db_open(node_dir, 0, &db, &e) < 0)
        die("db_open", &e);
    caller_local(&who, "fuzz");
    if (caller_local_sites(db, &who, NULL, &e) < 0 || who.nsites != 1)
        die("caller_local_sites", &e);
    if ((config = json_loads(site_config, 0, NULL)) == NULL || (out = regfields_put(db, &who, who.sites[0], config, &e)) == NULL)
        die("regfields_put", &e);
    json_decref(out);
    json_decref(config);
    db_close(db);
    log_set_level(LOG_ERROR);
    /* silence the command's report (see the top of the file) */
    devnull = fopen("/dev/null", "w");
    if (devnull == NULL)
        die("open /dev/null", NULL);
    stdout = devnull;
    stderr = devnull;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *argv[10];
    int argc = 0;
    FILE *f;

    if (size > INPUT_MAX)
        return 0;
    f = fopen(csv_path, "wb");
    if (f == NULL)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    if (fclose(f) != 0)
        abort();
    argv[argc++] = "import";
    argv[argc++] = "patients";
    argv[argc++] = "--data";
    argv[argc++] = node_dir;
    /* vary the options with the input so that every path gets its share */
    if (size % 2)
        argv[argc++] = "--skip-bad";
    if (size % 5 == 0) {
        argv[argc++] = "--map";
        argv[argc++] = "Prenom=given_name,Nom=family_name,UNHCR=identifier.unhcr";
    }
    argv[argc++] = csv_path;
    argv[argc] = NULL;
    (void)cmd_import(argc, argv);
    return 0;
}
