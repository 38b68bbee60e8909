/* demo.c — synthetic patients for demos, training and benchmarks: names in the spellings and scripts
 * people actually arrive with (Arabic, Dari/Pashto, Somali, Tigrinya, Ukrainian, Rohingya), birth dates of
 * mixed precision, identifiers and phones. Deterministic for a given seed. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "services/demo.h"
#include "services/patients.h"

/* A name as "spelling|spelling|...=original script"; a spelling is picked at random, the original script
 * is used for some records. */
struct group {
    const char *nationality, *language, *phone_prefix;
    const char *const *male, *const *female, *const *family;
};

static const char *const arab_m[] = {
    "Mohammed|Muhammad|Mohamad|Mohamed|Mohammad=محمد", "Ahmed|Ahmad=أحمد", "Omar|Umar=عمر", "Ali=علي",
    "Hassan|Hasan=حسن", "Hussein|Husayn|Hussain|Husein=حسين", "Yusuf|Youssef|Yousef|Yousif=يوسف",
    "Ibrahim|Ebrahim=إبراهيم", "Abdullah|Abdallah|Abdulla=عبد الله", "Khaled|Khalid=خالد",
    "Mustafa|Mostafa=مصطفى", "Abdel Rahman|Abdulrahman|Abd al-Rahman=عبد الرحمن", "Mahmoud|Mahmud=محمود",
    "Samir|Sameer=سمير", "Karim|Kareem=كريم", "Tariq|Tarek|Tareq=طارق", "Jamal|Gamal=جمال", "Bilal=بلال",
    "Walid|Waleed=وليد", "Said|Saeed|Saied=سعيد", "Nasser|Naser|Nasir=ناصر", "Rami|Ramy=رامي", NULL };
static const char *const arab_f[] = {
    "Fatima|Fatma|Fatimah=فاطمة", "Aisha|Aicha|Ayesha=عائشة", "Khadija|Khadijah|Khadeeja=خديجة",
    "Mariam|Maryam|Miriam=مريم", "Zainab|Zeinab|Zaynab=زينب", "Layla|Leila|Laila=ليلى", "Amina|Aminah=أمينة",
    "Nour|Noor=نور", "Sara|Sarah=سارة", "Rania|Ranya=رانيا", "Huda|Hoda=هدى", "Samira|Sameera=سميرة",
    "Yasmin|Yasmine|Jasmin=ياسمين", "Rasha=رشا", "Hanan=حنان", "Salma=سلمى", "Reem|Rim=ريم", NULL };
static const char *const arab_family[] = {
    "Al-Hassan|Alhassan|El Hassan=الحسن", "Haddad|Hadad=حداد", "Khalil|Khaleel=خليل", "Saleh|Salih=صالح",
    "Mansour|Mansur=منصور", "Abbas=عباس", "Hamdan=حمدان", "Al-Masri|Almasri|El Masri=المصري",
    "Darwish|Darwich=درويش", "Qasim|Kassem|Kasim=قاسم", "Othman|Osman|Uthman=عثمان", "Suleiman|Sulaiman|Soliman=سليمان",
    "Al-Ahmad|Alahmad=الأحمد", "Hamoud|Hammoud=حمود", "Al-Khatib|Alkhatib|El Khatib=الخطيب", "Youssef|Yusuf=يوسف",
    "Abu Zaid|Abouzeid|Abu Zeid=أبو زيد", "Al-Hussein|Alhussein=الحسين", "Nasrallah|Nasrullah=نصرالله", NULL };
static const char *const afg_m[] = {
    "Ahmad|Ahmed=احمد", "Mohammad|Muhammad|Mohammed=محمد", "Abdul Qadir|Abdulqadir|Abdul Kadir=عبدالقادر",
    "Gul Ahmad|Gulahmad=گل احمد", "Hamid|Hameed=حمید", "Farid|Fareed=فرید", "Nasrullah|Nasrallah=نصرالله",
    "Habibullah|Habibollah=حبیب الله", "Ghulam|Gholam=غلام", "Javid|Javed|Jawid=جاوید", "Zabihullah|Zabiullah=ذبیح الله",
    "Rahim|Raheem=رحیم", "Wahid|Waheed=وحید", "Sayed|Sayyed|Said=سید", NULL };
static const char *const afg_f[] = {
    "Fatima|Fatema|Fatemeh=فاطمه", "Zahra|Zohra=زهرا", "Maryam|Mariam=مریم", "Parwana|Parvaneh=پروانه",
    "Shabnam=شبنم", "Nargis|Narges=نرگس", "Malalai|Malalay=ملالی", "Zainab|Zeynab=زینب", "Soraya|Suraya=ثریا",
    "Freshta|Fereshteh|Fereshta=فرشته", "Gulalai|Gulalay=گلالی", NULL };
static const char *const afg_family[] = {
    "Ahmadi|Ahmady=احمدی", "Mohammadi|Muhammadi=محمدی", "Hakimi|Hakeemi=حکیمی", "Rahimi|Raheemi=رحیمی",
    "Hussaini|Hosseini|Husseini=حسینی", "Karimi|Kareemi=کریمی", "Nazari=نظری", "Popal=پوپل", "Wardak=وردک",
    "Stanekzai|Stanikzai=ستانکزی", "Safi=صافی", "Sultani=سلطانی", "Jalali=جلالی", NULL };
static const char *const som_m[] = {
    "Mohamed|Maxamed|Mahamed|Mohammed", "Abdullahi|Cabdullahi|Abdulahi", "Ahmed|Axmed", "Hassan|Xasan",
    "Hussein|Xuseen|Hussen", "Abdirahman|Cabdiraxmaan|Abdurahman", "Abdi|Cabdi", "Omar|Cumar", "Ali|Cali",
    "Yusuf|Yuusuf", "Ismail|Ismaaciil", "Farah|Faarax", NULL };
static const char *const som_f[] = {
    "Fadumo|Faduma|Fatuma", "Hodan", "Amina|Aamina", "Halima|Xaliimo|Halimo", "Sahra|Sahro|Saxra",
    "Asha|Caasha|Aisha", "Hawa|Xaawo|Hawo", "Ifrah|Ifraax", "Nasra|Nasro", "Sagal", NULL };
static const char *const som_family[] = {
    "Mohamed|Maxamed|Mahamed", "Ahmed|Axmed", "Hassan|Xasan", "Abdi|Cabdi", "Warsame|Warsama", "Farah|Faarax",
    "Hussein|Xuseen", "Osman|Cismaan", "Jama|Jaamac", "Egal|Cigaal", "Abdullahi|Cabdullahi", NULL };
static const char *const eri_m[] = {
    "Tesfaye|Tesfay=ተስፋይ", "Yonas|Yohannes=ዮናስ", "Dawit|Daweet=ዳዊት", "Habte|Habtay=ሃብተ", "Mehari|Mehary=መሓሪ",
    "Senai|Senay=ሰናይ", "Berhane|Berhe|Birhane=ብርሃነ", "Kidane|Kidan=ኪዳነ", "Samuel|Samiel=ሳሙኤል", NULL };
static const char *const eri_f[] = {
    "Selam|Salam=ሰላም", "Helen|Hellen=ሄለን", "Senait|Senayt=ሰናይት", "Mebrat|Mebrhit=መብራት", "Yordanos=ዮርዳኖስ",
    "Rahel|Rachel=ራሄል", "Saba=ሳባ", "Luwam|Lwam=ልዋም", NULL };
static const char *const eri_family[] = {
    "Tesfamariam|Tesfamaryam=ተስፋማርያም", "Ghebremedhin|Gebremedhin=ገብረመድህን", "Haile|Hayle=ሃይለ",
    "Tekle|Teklay=ተኽለ", "Asmerom|Asmarom=ኣስመሮም", "Woldu|Weldu=ወልዱ", "Gebreyesus|Ghebreyesus=ገብረየሱስ", NULL };
static const char *const ukr_m[] = {
    "Oleksandr|Aleksandr|Alexander|Olexandr=Олександр", "Serhii|Sergiy|Sergey|Serhiy=Сергій",
    "Andrii|Andriy|Andrey=Андрій", "Volodymyr|Vladimir=Володимир", "Mykola|Nikolai|Mykola=Микола",
    "Dmytro|Dmitry|Dmitriy=Дмитро", "Oleh|Oleg=Олег", "Yurii|Yuriy|Yuri=Юрій", "Ivan=Іван", "Taras=Тарас", NULL };
static const char *const ukr_f[] = {
    "Olena|Elena|Alena=Олена", "Yuliia|Yuliya|Yulia|Julia=Юлія", "Nataliia|Natalia|Natalya=Наталія",
    "Iryna|Irina=Ірина", "Oksana=Оксана", "Tetiana|Tatiana|Tetyana=Тетяна", "Svitlana|Svetlana=Світлана",
    "Kateryna|Ekaterina|Katerina=Катерина", "Halyna|Galina=Галина", NULL };
static const char *const ukr_family[] = {
    "Shevchenko|Shevchenco=Шевченко", "Kovalenko|Kovalenco=Коваленко", "Bondarenko=Бондаренко",
    "Tkachenko=Ткаченко", "Kravchenko=Кравченко", "Melnyk|Melnik=Мельник", "Boiko|Boyko=Бойко",
    "Koval|Kowal=Коваль", "Oliinyk|Oleynik|Oliynyk=Олійник", "Lysenko|Lisenko=Лисенко", NULL };
static const char *const roh_m[] = {
    "Mohammed|Mohammad|Mohamod=মোহাম্মদ", "Abdul Karim|Abdulkarim=আব্দুল করিম", "Nur Islam|Nurul Islam=নুরুল ইসলাম",
    "Rashid|Rashed=রশিদ", "Hossain|Hussain|Hosen=হোসেন", "Anwar|Anowar=আনোয়ার", "Jamal|Zamal=জামাল",
    "Shofiq|Shafiq|Shafique=শফিক", NULL };
static const char *const roh_f[] = {
    "Rahima|Rohima=রহিমা", "Begum|Bagum=বেগম", "Khatun|Khatoon=খাতুন", "Nur Begum|Noor Begum=নূর বেগম",
    "Rokeya|Rokiya=রোকেয়া", "Shamima|Samima=শামিমা", "Hasina=হাসিনা", "Jannat|Jonnat=জান্নাত", NULL };
static const char *const roh_family[] = {
    "Rahman|Rohman=রহমান", "Hossain|Hussain|Hosen=হোসেন", "Akter|Akhter|Aktar=আক্তার", "Ullah|Ulla=উল্লাহ",
    "Islam=ইসলাম", "Alam|Alom=আলম", "Uddin|Uddeen=উদ্দিন", "Begum|Bagum=বেগম", NULL };

static const struct group groups[] = {
    { "SY", "ar", "+963", arab_m, arab_f, arab_family },
    { "IQ", "ar", "+964", arab_m, arab_f, arab_family },
    { "SD", "ar", "+249", arab_m, arab_f, arab_family },
    { "AF", "prs", "+93", afg_m, afg_f, afg_family },
    { "AF", "ps", "+93", afg_m, afg_f, afg_family },
    { "SO", "so", "+252", som_m, som_f, som_family },
    { "ER", "ti", "+291", eri_m, eri_f, eri_family },
    { "UA", "uk", "+380", ukr_m, ukr_f, ukr_family },
    { "MM", "rhg", "+880", roh_m, roh_f, roh_family },
};

static const char *const camps[] = { "Zaatari", "Azraq", "Kutupalong", "Dadaab", "Kakuma", "Moria", "Bekaa 7",
                                     "Shatila", "Al-Hol", "Mahama" };

/* Patients per transaction: a larger batch writes each page of the search index once for more patients
 * (its terms are inserted sorted at the end of the batch), at the cost of memory for the batch's terms. */
#define DEMO_BATCH 50000

/* xorshift64*: reproducible, fast; not for anything secret */
static uint64_t rng_state;
static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* Identifiers must be unique: a serial number of the run, shifted by the seed and spread by multiplying
 * with a constant coprime to the modulus (a bijection), so they look random and never repeat in a run. */
static uint64_t demo_serial, demo_offset;

static uint64_t unique_number(uint64_t modulus)
{
    return (uint64_t)(((unsigned __int128)(demo_serial + demo_offset) * 6364136223846793005ULL) % modulus);
}

static unsigned rng_below(unsigned n)
{
    return (unsigned)(rng_next() % n);
}

static size_t list_len(const char *const *l)
{
    size_t n = 0;

    while (l[n])
        n++;
    return n;
}

/* Pick one spelling of a name entry into out; *script gets the original-script form ("" if none). */
static void pick_name(const char *entry, char *out, size_t outlen, char *script, size_t slen)
{
    const char *eq = strchr(entry, '='), *end = eq ? eq : entry + strlen(entry), *p = entry, *bar;
    unsigned count = 1, k;

    for (bar = entry; bar < end; bar++)
        count += *bar == '|';
    k = rng_below(count);
    while (k--)
        p = strchr(p, '|') + 1;
    bar = strchr(p, '|');
    if (bar == NULL || bar > end)
        bar = end;
    snprintf(out, outlen, "%.*s", (int)(bar - p), p);
    snprintf(script, slen, "%s", eq ? eq + 1 : "");
}

/* One synthetic patient registration (a create input) at site. */
static json_t *demo_patient(const char *site)
{
    const struct group *g = &groups[rng_below(sizeof(groups) / sizeof(groups[0]))];
    int female = rng_below(2);
    const char *const *given_list = female ? g->female : g->male;
    char given[64], family[64], father[64], gs[64], fs[64], ps[64], original[200], buf[40];
    json_t *p, *ids;
    unsigned r;

    pick_name(given_list[rng_below((unsigned)list_len(given_list))], given, sizeof(given), gs, sizeof(gs));
    pick_name(g->family[rng_below((unsigned)list_len(g->family))], family, sizeof(family), fs, sizeof(fs));
    pick_name(g->male[rng_below((unsigned)list_len(g->male))], father, sizeof(father), ps, sizeof(ps));
    p = json_pack("{s:s,s:s,s:s,s:s,s:s,s:[s]}", "site_id", site, "given_name", given, "family_name", family,
                  "sex", female ? "female" : "male", "nationality", g->nationality, "languages", g->language);
    if (rng_below(2))
        json_object_set_new(p, "middle_name", json_string(father));
    if (gs[0] && fs[0] && rng_below(3) == 0) {
        snprintf(original, sizeof(original), "%s %s", gs, fs);
        json_object_set_new(p, "name_original", json_string(original));
    }
    r = rng_below(100);
    if (r < 60) {
        snprintf(buf, sizeof(buf), "%04u-%02u-%02u", 1950 + rng_below(75), 1 + rng_below(12), 1 + rng_below(28));
        json_object_set_new(p, "birth_date", json_string(buf));
    } else if (r < 70) {
        snprintf(buf, sizeof(buf), "%04u-%02u", 1950 + rng_below(75), 1 + rng_below(12));
        json_object_set_new(p, "birth_date", json_string(buf));
    } else if (r < 85) {
        snprintf(buf, sizeof(buf), "%04u", 1950 + rng_below(75));
        json_object_set_new(p, "birth_date", json_string(buf));
    } else {
        json_object_set_new(p, "age_years", json_integer(rng_below(80)));
    }
    ids = json_object();
    demo_serial++;
    if (rng_below(100) < 70) {
        uint64_t n = unique_number(10000000000000ULL);

        snprintf(buf, sizeof(buf), "%03u-%02uC%08" PRIu64, (unsigned)(n / 10000000000ULL),
                 (unsigned)(n / 100000000 % 100), n % 100000000);
        json_object_set_new(ids, "unhcr", json_string(buf));
    }
    if (rng_below(100) < 20) {
        snprintf(buf, sizeof(buf), "IOM-%010" PRIu64, unique_number(10000000000ULL));
        json_object_set_new(ids, "iom", json_string(buf));
    }
    json_object_set_new(p, "identifiers", ids);
    if (rng_below(100) < 60) {
        snprintf(buf, sizeof(buf), "%s %03u %03u %03u", g->phone_prefix, 100 + rng_below(900), rng_below(1000),
                 rng_below(1000));
        json_object_set_new(p, "phones", json_pack("[s]", buf));
    }
    json_object_set_new(p, "camp", json_string(camps[rng_below(sizeof(camps) / sizeof(camps[0]))]));
    return p;
}

/* The patients prepared by the generator thread (made up, validated, names folded, search terms and
 * row text derived: patients_import_prepare), handed to the writer in the order they were made, a chunk
 * at a time. The writer hands stored chunks back, and the generator frees them: memory is freed by the
 * thread that allocated it, which keeps malloc's per-thread arenas apart. */
#define DEMO_CHUNK 64
#define DEMO_CHUNKS 64
struct demo_chunk {
    struct patient_prepared *item[DEMO_CHUNK];
    int n;
    int failed;                 /* out of memory after the n items */
};
struct demo_ring {
    struct demo_chunk *v[2 * DEMO_CHUNKS];     /* full holds at most DEMO_CHUNKS, done one more */
    size_t head, count;
};
struct demo_queue {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    struct demo_ring full, done;
    int stop;                   /* the writer gave up: the generator ends */
    int ended;                  /* the generator ended: no more chunks will come */
    int64_t total;
    const struct caller *who;
    const json_t *configs;
    const char *site;
};

static void ring_put(struct demo_ring *r, struct demo_chunk *c)
{
    r->v[(r->head + r->count) % (2 * DEMO_CHUNKS)] = c;
    r->count++;
}

static struct demo_chunk *ring_take(struct demo_ring *r)
{
    struct demo_chunk *c = r->v[r->head];

    r->head = (r->head + 1) % (2 * DEMO_CHUNKS);
    r->count--;
    return c;
}

static void chunk_free(struct demo_chunk *c)
{
    int i;

    if (c == NULL)
        return;
    for (i = 0; i < c->n; i++)
        patients_prepared_free(c->item[i]);
    free(c);
}

static void *demo_generate(void *arg)
{
    struct demo_queue *q = arg;
    struct demo_chunk *c = NULL, *old[2 * DEMO_CHUNKS];
    int64_t made = 0;
    size_t nold;
    json_t *row;
    int failed = 0;

    while (made < q->total && !failed) {
        if ((c = calloc(1, sizeof(*c))) == NULL)
            break;
        while (c->n < DEMO_CHUNK && made < q->total) {
            row = demo_patient(q->site);
            c->item[c->n] = row ? patients_import_prepare(q->who, q->configs, row, made + 1) : NULL;
            json_decref(row);
            if (c->item[c->n] == NULL) {
                c->failed = 1;
                break;
            }
            c->n++;
            made++;
        }
        failed = c->failed;
        pthread_mutex_lock(&q->lock);
        while (q->full.count >= DEMO_CHUNKS && !q->stop)
            pthread_cond_wait(&q->changed, &q->lock);
        if (q->stop) {
            pthread_mutex_unlock(&q->lock);
            chunk_free(c);
            c = NULL;
            break;
        }
        ring_put(&q->full, c);
        pthread_cond_broadcast(&q->changed);
        nold = 0;
        while (q->done.count > 0)
            old[nold++] = ring_take(&q->done);
        pthread_mutex_unlock(&q->lock);
        while (nold > 0)
            chunk_free(old[--nold]);
    }
    pthread_mutex_lock(&q->lock);
    q->ended = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

/* The next chunk of prepared patients (NULL: the generator ran out of memory); the previous one (stored)
 * goes back to the generator. */
static struct demo_chunk *demo_next(struct demo_queue *q, struct demo_chunk *stored)
{
    struct demo_chunk *c;

    pthread_mutex_lock(&q->lock);
    if (stored)
        ring_put(&q->done, stored);
    pthread_cond_broadcast(&q->changed);
    while (q->full.count == 0 && !q->ended)
        pthread_cond_wait(&q->changed, &q->lock);
    c = q->full.count ? ring_take(&q->full) : NULL;
    pthread_mutex_unlock(&q->lock);
    return c;
}

/* Stop the generator and free what it prepared. */
static void demo_stop(struct demo_queue *q, pthread_t thread, struct demo_chunk *current)
{
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->changed);
    pthread_mutex_unlock(&q->lock);
    pthread_join(thread, NULL);
    chunk_free(current);
    while (q->full.count > 0)
        chunk_free(ring_take(&q->full));
    while (q->done.count > 0)
        chunk_free(ring_take(&q->done));
}

int demo_add_patients(struct db *db, const struct caller *who, const char *site, int64_t count, uint64_t seed,
                      demo_progress_cb progress, struct err *e)
{
    struct demo_queue *q = calloc(1, sizeof(*q));
    struct patient_import imp;
    struct demo_chunk *chunk = NULL;
    int64_t done = 0, batch, i;
    json_t *report, *configs = NULL;
    pthread_t thread;
    int ok, rc = -1, started = 0, at = 0;

    if (q == NULL)
        return err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
    rng_state = seed * 0x9E3779B97F4A7C15ULL | 1;
    demo_serial = 0;
    demo_offset = rng_next() % 10000000000000ULL;
    /* one thread makes and prepares the patients, this one stores them: SQLite stays on this thread */
    if ((configs = patients_import_configs(db, who, e)) == NULL)
        goto out;
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->changed, NULL);
    q->total = count;
    q->who = who;
    q->configs = configs;
    q->site = site;
    if (pthread_create(&thread, NULL, demo_generate, q) != 0) {
        err_set(e, ERR_INTERNAL, "no_thread", "cannot start a thread");
        goto out;
    }
    started = 1;
    while (done < count) {
        batch = count - done < DEMO_BATCH ? count - done : DEMO_BATCH;
        if (patients_import_begin(&imp, db, who, 0, e) < 0)
            goto out;
        for (ok = 1, i = 0; ok && i < batch; i++) {
            if (chunk == NULL || at == chunk->n) {
                /* a chunk cut short by the generator running out of memory is the last */
                if (chunk == NULL || !chunk->failed) {
                    chunk = demo_next(q, chunk);
                    at = 0;
                }
                if (chunk == NULL || at == chunk->n) {
                    err_set(e, ERR_INTERNAL, "out_of_memory", "out of memory");
                    ok = 0;
                    break;
                }
            }
            ok = patients_import_prepared(&imp, chunk->item[at++], e) == 0;
        }
        report = patients_import_finish(&imp, ok, e);
        if (report == NULL)
            goto out;
        if (e->kind != ERR_NONE) {
            /* a generated person was refused: most often the same --seed run twice on one node */
            const json_t *first = json_array_get(json_object_get(report, "errors"), 0);

            err_set(e, ERR_CONFLICT, json_string_value(json_object_get(first, "code")),
                    "a demo patient was refused (%s); nothing was added by this batch. Adding the same people "
                    "twice? Run demo with another --seed", json_string_value(json_object_get(first, "message")));
            json_decref(report);
            goto out;
        }
        json_decref(report);
        done += batch;
        if (progress)
            progress(done, count);
    }
    rc = 0;
out:
    if (started)
        demo_stop(q, thread, chunk);
    if (configs) {
        pthread_mutex_destroy(&q->lock);
        pthread_cond_destroy(&q->changed);
    }
    json_decref(configs);
    free(q);
    return rc;
}
