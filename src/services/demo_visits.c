/* demo_visits.c — synthetic visits for demo and benchmark nodes: encounters with vitals and consultation
 * entries, recorded through the same checks, change log and audit as a clinician's (see demo_visits.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/date.h"
#include "core/util.h"
#include "services/demo_visits.h"
#include "services/encounters.h"
#include "store/encounters.h"

#define BATCH_PATIENTS 250      /* patients whose visits one transaction records */

static const char *const visit_types[] = { "consultation", "follow_up", "triage", "outreach" };
static const char *const complaints[] = { "fever", "cough", "headache", "abdominal_pain", "diarrhoea", "sore_throat",
                                          "vomiting", "chest_pain", "dizziness", "runny_nose" };
static const char *const diagnoses[] = { "J06.9", "I10", "E11.9", "K29.7", "M54.5", "N39.0", "L30.9", "R50.9", "A09",
                                         "Z00.0", "J18.9", "B86" };
static const char *const histories[] = {
    "Patient stable, follow up in 2 weeks.", "Complains of headache for 3 days.", "المريض يشكو من ألم في البطن",
    "Referred to district hospital.", "Vaccination up to date.", "يحتاج إلى متابعة بعد أسبوع", "No known allergies.",
    "BP elevated, recheck next visit.",
};
static const char *const plans[] = { "Paracetamol and fluids, review if not better in 3 days.",
                                     "Start treatment, follow up in two weeks.", "Refer to the district hospital.",
                                     "Health education given; no treatment needed." };

/* xorshift64*: deterministic for a seed, so two nodes made with one seed hold the same values */
static uint64_t next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int pick(uint64_t *s, int n)
{
    return (int)(next(s) % (uint64_t)n);
}

#define PICK(s, a) (a[pick(s, (int)(sizeof(a) / sizeof(a[0])))])

struct ids {
    char (*v)[ID_LEN];
    size_t n, cap;
};

static int ids_add(const char *id, void *ctx)
{
    struct ids *l = ctx;

    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        void *p = realloc(l->v, cap * sizeof(*l->v));

        if (p == NULL)
            return 1;
        l->v = p;
        l->cap = cap;
    }
    snprintf(l->v[l->n++], ID_LEN, "%s", id);
    return 0;
}

static json_t *vitals(uint64_t *s)
{
    int sys = 95 + pick(s, 86);

    return json_pack("{s:i,s:i,s:i,s:i,s:f,s:i,s:f,s:i}", "systolic_bp", sys, "diastolic_bp", 50 + pick(s, sys - 90 < 10 ? 10 : sys - 90),
                     "heart_rate", 50 + pick(s, 80), "respiratory_rate", 12 + pick(s, 20), "temp_c",
                     (355 + pick(s, 51)) / 10.0, "spo2", 90 + pick(s, 11), "weight_kg",
                     (300 + pick(s, 800)) / 10.0, "height_cm", 140 + pick(s, 55));
}

static json_t *consultation(uint64_t *s)
{
    char follow[11];

    date_format(date_today() + 7 + pick(s, 21), follow);
    return json_pack("{s:[s],s:s,s:s,s:s,s:[{s:s,s:s,s:s}],s:s,s:s}", "complaints", PICK(s, complaints), "history",
                     PICK(s, histories), "general_condition", pick(s, 4) ? "well" : "unwell", "examination",
                     PICK(s, histories), "diagnoses", "diagnosis", PICK(s, diagnoses), "certainty",
                     pick(s, 3) ? "suspected" : "confirmed", "new_or_follow_up", pick(s, 2) ? "new" : "follow_up",
                     "plan", PICK(s, plans), "follow_up_date", follow);
}

int demo_add_visits(struct db *db, const struct caller *who, int visits, int entries, uint64_t seed,
                    struct demo_visits_report *report, struct err *e)
{
    struct ids ids = { NULL, 0, 0 };
    struct clinical_batch b;
    json_t *sites = json_array(), *in, *out, *errors;
    char *sites_text = NULL, started[21];
    uint64_t s = seed ? seed : 0x9E3779B97F4A7C15ULL;
    size_t i;
    int k, j, rc = -1, open = 0;
    int64_t now = now_ms();

    memset(report, 0, sizeof(*report));
    if (visits < 0 || visits > 100 || entries < 0 || entries > 2)
        return err_set(e, ERR_INVALID, "invalid_count", "visits must be 0 to 100 and entries per visit 0 to 2");
    for (k = 0; k < who->nsites; k++)
        json_array_append_new(sites, json_string(who->sites[k]));
    if ((sites_text = json_dumps(sites, JSON_COMPACT)) == NULL) {
        err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
        goto done;
    }
    /* the patients with no visit yet (a second run adds visits only to patients added since) */
    if (store_patients_without_encounters(db, sites_text, ids_add, &ids, e) < 0)
        goto done;
    for (i = 0; i < ids.n; i++) {
        if (!open) {
            if (clinical_batch_begin(&b, db, who, e) < 0)
                goto done;
            open = 1;
        }
        for (k = 0; k < visits; k++) {
            /* within the last year, one visit after another */
            datetime_format(now - (int64_t)(visits - k) * 86400000 * (1 + pick(&s, 100)) - pick(&s, 36000000),
                            started);
            in = json_pack("{s:s,s:s,s:s}", "type", PICK(&s, visit_types), "status", "finished", "started_at", started);
            out = clinical_batch_encounter(&b, ids.v[i], in, e);
            json_decref(in);
            if (out == NULL)
                goto fail;
            report->encounters++;
            for (j = 0; j < entries; j++) {
                in = json_pack("{s:s,s:o}", "form", j == 0 ? "vitals" : "consultation", "values",
                               j == 0 ? vitals(&s) : consultation(&s));
                errors = NULL;
                {
                    json_t *entry = clinical_batch_entry(&b, json_string_value(json_object_get(out, "id")), in, &errors,
                                                         e);

                    json_decref(in);
                    if (entry == NULL) {
                        /* a bug of the generator (or a changed built-in form): name the field, it is fiction */
                        const char *field, *msg = NULL;
                        json_t *m;

                        json_object_foreach(errors, field, m) {
                            msg = json_string_value(m);
                            break;
                        }
                        if (msg)
                            err_set(e, ERR_INTERNAL, "demo_entry_rejected", "a demo %s entry was refused: %s %s",
                                    j == 0 ? "vitals" : "consultation", field, msg);
                        json_decref(errors);
                        json_decref(out);
                        goto fail;
                    }
                    json_decref(errors);
                    json_decref(entry);
                }
                report->entries++;
            }
            json_decref(out);
        }
        if (i % BATCH_PATIENTS == BATCH_PATIENTS - 1) {
            open = 0;
            if (clinical_batch_finish(&b, 1, e) < 0)
                goto done;
        }
    }
    if (open && clinical_batch_finish(&b, 1, e) < 0)
        goto done;
    report->patients = (int64_t)ids.n;
    rc = 0;
    goto done;
fail:
    clinical_batch_finish(&b, 0, NULL);
done:
    json_decref(sites);
    free(sites_text);
    free(ids.v);
    return rc;
}
