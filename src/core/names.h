/* names.h — spelling- and script-tolerant matching of personal names: "Mohammed", "Muhammad", "Mohamad" and
 * "محمد" are one person. Pure functions over strings: no storage, no I/O.
 *
 * Ownership: every function writes into caller storage and keeps no pointer to its arguments; nothing here
 * returns heap memory. All functions are thread-safe (each thread uses its own clones of the ICU
 * transliterators, made on first use).
 *
 * How the patient registry uses this module
 *   On registration or edit, for each name of a patient (given, family, father's, alias, original script):
 *     names_fold(name)  -> a folded string ("abdalrahman hussein") stored next to the name, for display-free
 *                          comparison and for an optional FTS5 trigram index;
 *     names_keys(name)  -> a few short phonetic keys ("brhmn hsn ..."), stored one row per key in an indexed
 *                          table (key, patient_id).
 *   On search, for the query typed by a registrar (any script, possibly half-typed):
 *     names_keys(query) -> look up patients holding any of those keys; for typing-as-you-search also look up
 *                          keys starting with the query's keys (key >= 'mhm' AND key < 'mhn'), since a prefix of
 *                          a name gives a prefix of its key;
 *     names_search_score(query, candidate) -> rank the candidates (the query may be partial and prefixes
 *                          count); show those at or above NAMES_MATCH_THRESHOLD.
 *   On registration, to warn about a possible duplicate: names_similarity(new, existing) at or above
 *   NAMES_DUPLICATE_THRESHOLD, combined by the caller with date of birth and sex.
 *
 * The steps, each usable alone (docs/names.md gives every rule and the reason for it):
 *   fold      any script -> lower-case ASCII words: ICU transliteration with name-specific rules for the
 *             Arabic script (Arabic, Persian, Pashto, Kurdish, Urdu), BGN/UNGEGN/ES-3842 rules for Cyrillic,
 *             Greek and Ge'ez, ICU defaults for the rest; diacritics, harakat and punctuation removed.
 *   tokens    split a folded name into words, merging particles: "abd al rahman", "abdel rahman",
 *             "abdurrahman" -> "abdalrahman"; "abu bakr" -> "abubakr"; "nasr allah" -> "nasrallah";
 *             "salah ud din" -> "salahaldin"; "bin", "ibn", "bint", "ould" and a lone "al" dropped.
 *   key       one token -> a consonant skeleton in coarse sound classes ("mohammed" -> "mhmd").
 *   similarity  weighted edit distance between tokens (cheap: vowel changes, unwritten short vowels,
 *             kh/h, q/k, th/t/s, doubled letters ...; dear: a different consonant, a final vowel that changes
 *             Ali into Alia), tokens paired regardless of order.
 */
#ifndef SANAD_NAMES_H
#define SANAD_NAMES_H

#include <stddef.h>

#define NAMES_INPUT_MAX    1024 /* bytes of a name read by names_fold; the rest is ignored (cut at a character) */
#define NAMES_FOLD_MAX     512  /* a buffer this size always holds a folded name (output is cut at a word) */
#define NAMES_TOKENS_MAX   12   /* words kept from one name; more are ignored */
#define NAMES_TOKEN_MAX    40   /* bytes of one token including the NUL; longer words are cut */
#define NAMES_KEY_MAX      24   /* bytes of one phonetic key including the NUL */
#define NAMES_KEYS_MAX     512  /* a buffer this size always holds names_keys() output */

/* Similarity at or above which a search shows a candidate as a match of the query. */
#define NAMES_MATCH_THRESHOLD     0.80
/* Similarity at or above which two names alone make registration ask "is this the same person?". */
#define NAMES_DUPLICATE_THRESHOLD 0.88

struct names_tokens {
    int n;                                          /* number of tokens, 0..NAMES_TOKENS_MAX */
    char tok[NAMES_TOKENS_MAX][NAMES_TOKEN_MAX];    /* lower-case ASCII words */
};

/* Compile every ICU transliterator now. Optional: otherwise each script's is compiled when a name in it
 * first comes (Arabic's in ~1 ms; the first that builds on ICU's own transliterators loads their registry,
 * ~20 ms). Returns 0, or -1 when ICU cannot build one (a broken ICU install). Safe from several threads. */
int names_init(void);

/* Close every transliterator and forget the per-thread copies. Call only when no other thread is inside
 * this module (at exit, after the HTTP server stopped); names_init() may be called again afterwards. */
void names_shutdown(void);

/* Fold a UTF-8 name in any script into lower-case ASCII words separated by single spaces, e.g.
 * "  Abd al-Raḥmān " -> "abd al rahman", "عبد الرحمن" -> "abd alrhmn", "Олена" -> "olena".
 * At most NAMES_INPUT_MAX bytes of input are read. The output is cut at a word boundary when outlen is too
 * small (NAMES_FOLD_MAX always suffices). Returns the output length (0 for a name with no letters), or -1
 * when utf8 is NULL or not valid UTF-8, outlen is 0, ICU fails, or the text grows past an internal limit
 * while being normalised (hundreds of ligatures; no real name does). Uses up to ~70 KB of stack. */
int names_fold(const char *utf8, char *out, size_t outlen);

/* 1 when names_fold(utf8) would not wait for a transliterator to be compiled (it is, or the name needs
 * none); 0 when it would (another thread may be compiling it: names_init). Lets a caller with other work
 * do that first. */
int names_fold_ready(const char *utf8);

/* Split an already folded name into tokens, merging and dropping particles (see above). Returns the number of
 * tokens (also in out->n). Words that are not lower-case ASCII letters are skipped. */
int names_tokens(const char *folded, struct names_tokens *out);

/* The phonetic key of one token (a word of names_tokens), e.g. "mohammed", "muhammad", "mhmd" -> "mhmd".
 * Returns the key length (0 when the token has no letters), or -1 when outlen < NAMES_KEY_MAX. */
int names_phonetic_key(const char *token, char *out, size_t outlen);

/* All index keys of a name in any script: for every token its key plus the keys of its ambiguous readings
 * (kh as k or h, th as t or s, g as h ...), the key without a glued article, and the key of each two
 * neighbouring tokens glued; distinct, space-separated. Keys that would not fit are left out (a name of up
 * to six words always fits). Returns the number of keys, or -1 when names_fold() fails or
 * outlen < NAMES_KEYS_MAX. */
int names_keys(const char *utf8, char *out, size_t outlen);

/* names_keys() of a name already split by names_tokens(), without folding and splitting it again. */
int names_keys_of_tokens(const struct names_tokens *t, char *out, size_t outlen);

/* The keys of one token alone (its readings, and without a glued article), without the keys of glued
 * neighbours: what a duplicate check compares word by word. Same return and outlen rule as names_keys. */
int names_token_keys(const char *token, char *out, size_t outlen);

/* Similarity in [0, 1] of two names in any script (raw or folded), insensitive to the order of the words:
 * 1 means the same spelling after folding. Used for duplicate detection: a name with extra words scores
 * somewhat lower than the same name without them. Returns 0 when either name is invalid or empty. */
double names_similarity(const char *a, const char *b);

/* Similarity of a name of at least two words (part) to a name that has all of them and maybe more
 * (whole), in [0, 1]: like names_similarity, but words of whole that part lacks (a father's name left
 * out) cost only 1 % each (2 % for two or more) instead of 10 %. 0 when part has fewer than two words or
 * whole fewer words than part. For duplicate checks: "Hanan Hamdan" and "Hanan Sameer Hamdan". */
double names_partial_similarity(const char *part, const char *whole);

/* names_similarity and names_partial_similarity of names already split by names_tokens(). */
double names_similarity_tokens(const struct names_tokens *a, const struct names_tokens *b);
double names_partial_similarity_tokens(const struct names_tokens *part, const struct names_tokens *whole);

/* How well a search query (any script, maybe half-typed: "moham ali") matches a candidate name, in [0, 1].
 * Every query word must find its own candidate word, as a whole word or as a prefix; candidate words the
 * query does not mention cost nothing. Returns 0 when either is invalid or empty. */
double names_search_score(const char *query, const char *candidate);
/* The same for names already split by names_tokens() (a caller scoring many candidates splits each once). */
double names_search_score_tokens(const struct names_tokens *query, const struct names_tokens *candidate);

#endif
