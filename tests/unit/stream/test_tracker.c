/* The stream tracker with a recording sink: presence events to the other
 * members (StreamPresenceEvent or a mode's own), hidden presences, updates
 * as a leave and a join, the last leave freeing the stream, every limit and
 * its message, listings, lookups, delivery to a stream and from a member,
 * closing, allocation failures, and four threads on shared streams. */
#include "failalloc.h"
#include "kn_codec.h"
#include "kn_error.h"
#include "kn_mem.h"
#include "kn_stream.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* --- the recording sink ----------------------------------------------------------- */

#define MAX_SENDS 32
#define MAX_TO    16

/* One call of the sink: one recipient list. */
typedef struct delivery {
    kn_conn_id to[MAX_TO];
    size_t n;
    uint8_t channel;
    bool reliable;
    uint8_t data[64]; /* the first bytes, for raw sends */
    size_t len;
    kn_envelope *env; /* decoded, unless the recorder is raw or counting */
} delivery;

typedef struct recorder {
    delivery d[MAX_SENDS];
    size_t n;
    bool raw;        /* bytes that are not envelopes (sends, custom builds) */
    bool count_only; /* allocation-failure runs: decoding would allocate too */
    int answer;      /* what the sink returns */
} recorder;

static int record(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel, const uint8_t *data,
                  size_t len, bool reliable)
{
    recorder *r = ud;
    assert_true(r->n < MAX_SENDS && n <= MAX_TO);
    delivery *d = &r->d[r->n++];
    memset(d, 0, sizeof *d);
    memcpy(d->to, conns, n * sizeof *conns);
    d->n = n;
    d->channel = channel;
    d->reliable = reliable;
    d->len = len;
    memcpy(d->data, data, len < sizeof d->data ? len : sizeof d->data);
    if (!r->raw && !r->count_only) assert_int_equal(kn_envelope_decode(data, len, &d->env), KN_OK);
    return r->answer;
}

static void reset(recorder *r)
{
    for (size_t i = 0; i < r->n; i++)
        kn_envelope_free(r->d[i].env);
    r->n = 0;
}

static bool sent_to(const delivery *d, kn_conn_id conn)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->to[i] == conn) return true;
    return false;
}

/* --- streams and presences -------------------------------------------------------- */

static kn_stream stream(uint8_t mode, const char *subject, const char *label)
{
    kn_stream s;
    memset(&s, 0, sizeof s);
    s.mode = mode;
    snprintf(s.subject, sizeof s.subject, "%s", subject);
    snprintf(s.subcontext, sizeof s.subcontext, "sub-%s", subject);
    snprintf(s.label, sizeof s.label, "%s", label);
    return s;
}

static kn_presence presence(kn_conn_id conn, const char *name)
{
    kn_presence p;
    memset(&p, 0, sizeof p);
    p.conn = conn;
    snprintf(p.user_id, sizeof p.user_id, "user-%s", name);
    snprintf(p.session_id, sizeof p.session_id, "sess-%s", name);
    snprintf(p.username, sizeof p.username, "%s", name);
    return p;
}

/* The config of most tests: small limits that are quick to reach. */
#define PER_STREAM  3
#define PER_SESSION 4

typedef struct fixture {
    recorder rec;
    kn_tracker *t;
    char msg[128];
} fixture;

static int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    cfg.max_per_stream = PER_STREAM;
    cfg.max_per_session = PER_SESSION;
    kn_tracker_sink sink = {record, &f.rec};
    assert_int_equal(kn_tracker_create(&cfg, &sink, &f.t), KN_OK);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    reset(&f->rec);
    kn_tracker_destroy(f->t);
    return 0;
}

/* Tracks p on s, which must succeed; returns what the track did. */
static kn_tracker_joined join(fixture *f, const kn_stream *s, const kn_presence *p)
{
    kn_tracker_joined j;
    int rc = kn_tracker_track(f->t, s, p, NULL, &j, f->msg, sizeof f->msg);
    if (rc) fail_msg("track of %s: %s (%s)", p->username, kn_err_name(rc), f->msg);
    return j;
}

/* p joins PER_SESSION new streams: it is on none now, and nothing of its
 * earlier streams is still counted against it. */
static void join_a_whole_session_of_streams(fixture *f, const kn_presence *p)
{
    for (int i = 0; i < PER_SESSION; i++) {
        char name[16];
        snprintf(name, sizeof name, "fresh-%d", i);
        kn_stream s = stream(KN_STREAM_CHANNEL, name, "");
        join(f, &s, p);
    }
}

/* a then b join s; what the sink saw so far is forgotten. */
static void join_both(fixture *f, const kn_stream *s, const kn_presence *a, const kn_presence *b)
{
    join(f, s, a);
    join(f, s, b);
    reset(&f->rec);
}

static int try_join(fixture *f, const kn_stream *s, const kn_presence *p,
                    const kn_tracker_opts *opts)
{
    f->msg[0] = 0;
    kn_tracker_joined j;
    int rc = kn_tracker_track(f->t, s, p, opts, &j, f->msg, sizeof f->msg);
    kn_free(j.others);
    return rc;
}

/* d is a StreamPresenceEvent about s on the control channel, reliable. */
static Kaos__V1__StreamPresenceEvent *presence_event(const delivery *d, const kn_stream *s)
{
    assert_non_null(d->env);
    assert_int_equal(d->channel, KN_CHANNEL_CONTROL);
    assert_true(d->reliable);
    assert_int_equal(d->env->message_case, KAOS__V1__ENVELOPE__MESSAGE_STREAM_PRESENCE);
    Kaos__V1__StreamPresenceEvent *ev = d->env->stream_presence;
    assert_non_null(ev->stream);
    assert_int_equal(ev->stream->mode, s->mode);
    assert_string_equal(ev->stream->subject, s->subject);
    assert_string_equal(ev->stream->subcontext, s->subcontext);
    assert_string_equal(ev->stream->label, s->label);
    return ev;
}

static void expect_user(const Kaos__V1__UserPresence *u, const kn_presence *p, const char *status)
{
    assert_string_equal(u->user_id, p->user_id);
    assert_string_equal(u->session_id, p->session_id);
    assert_string_equal(u->username, p->username);
    assert_int_equal(u->persistence, p->persistence);
    assert_string_equal(u->status, status ? status : "");
}

static kn_tracker_stats stats(fixture *f)
{
    kn_tracker_stats st;
    kn_tracker_stats_get(f->t, &st);
    return st;
}

/* --- joins ------------------------------------------------------------------------ */

static void a_join_tells_the_others_but_not_the_joiner(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "lobby");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), c = presence(3, "c");
    b.persistence = true;
    b.status = "here";

    kn_tracker_joined ja = join(f, &s, &a);
    assert_true(ja.created);
    assert_int_not_equal(ja.handle, 0);
    assert_int_equal(ja.count, 1);
    assert_int_equal(ja.max_size, PER_STREAM);
    assert_null(ja.others);
    assert_int_equal(f->rec.n, 0); /* nobody else to tell */

    kn_tracker_joined jb = join(f, &s, &b);
    assert_false(jb.created);
    assert_int_equal(jb.handle, ja.handle);
    assert_int_equal(jb.count, 2);
    assert_int_not_equal(jb.slot, ja.slot);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.d[0].n, 1);
    assert_int_equal(f->rec.d[0].to[0], 1);
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_joins, 1);
    assert_int_equal(ev->n_leaves, 0);
    expect_user(ev->joins[0], &b, "here");

    kn_tracker_joined jc = join(f, &s, &c);
    assert_int_equal(jc.count, 3);
    assert_int_equal(f->rec.n, 2);
    assert_int_equal(f->rec.d[1].n, 2);
    assert_true(sent_to(&f->rec.d[1], 1) && sent_to(&f->rec.d[1], 2));
    assert_false(sent_to(&f->rec.d[1], 3));
    ev = presence_event(&f->rec.d[1], &s);
    expect_user(ev->joins[0], &c, NULL);

    kn_stream back;
    assert_int_equal(kn_tracker_stream_of(f->t, ja.handle, &back), KN_OK);
    assert_int_equal(back.mode, s.mode);
    assert_string_equal(back.subject, s.subject);
    assert_string_equal(back.label, s.label);
    assert_int_equal(stats(f).events, 2);
}

static void a_hidden_join_tells_nobody_and_is_listed_only_when_asked(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), h = presence(2, "h");
    h.hidden = true;
    join(f, &s, &a);
    join(f, &s, &h);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(kn_tracker_count(f->t, &s), 2);

    kn_presence *list;
    size_t n;
    assert_int_equal(kn_tracker_list(f->t, &s, false, true, &list, &n), KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].username, "a");
    kn_free(list);

    assert_int_equal(kn_tracker_list(f->t, &s, true, true, &list, &n), KN_OK);
    assert_int_equal(n, 2);
    assert_true(!strcmp(list[0].username, "h") || !strcmp(list[1].username, "h"));
    kn_free(list);

    assert_int_equal(kn_tracker_list(f->t, &s, true, false, &list, &n), KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].username, "h");
    assert_true(list[0].hidden);
    kn_free(list);

    kn_stream absent = stream(KN_STREAM_CHANNEL, "nobody", "");
    list = (kn_presence *)&n; /* must be overwritten */
    assert_int_equal(kn_tracker_list(f->t, &absent, true, true, &list, &n), KN_OK);
    assert_int_equal(n, 0);
    assert_null(list);
}

static void tracking_a_connection_twice_is_already_exists(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    join_both(f, &s, &a, &b);
    kn_presence again = presence(2, "other-name");
    assert_int_equal(try_join(f, &s, &again, NULL), KN_ERR_ALREADY_EXISTS);
    assert_string_equal(f->msg, "session is on this stream already");
    assert_int_equal(kn_tracker_count(f->t, &s), 2);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(stats(f).presences, 2);
}

static void list_others_is_a_snapshot_of_the_other_visible_presences(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), h = presence(3, "h"),
                c = presence(4, "c");
    a.status = "status of a";
    h.hidden = true;
    join(f, &s, &a);
    join(f, &s, &b);
    kn_tracker_opts opts = {.list_others = true, .max_size = 10};
    kn_tracker_joined j;
    /* the stream exists with PER_STREAM; h is the third */
    assert_int_equal(kn_tracker_track(f->t, &s, &h, &opts, &j, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(j.max_size, PER_STREAM); /* max_size only counts for a new stream */
    assert_int_equal(j.n_others, 2);
    kn_free(j.others);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 2), KN_OK);

    assert_int_equal(kn_tracker_track(f->t, &s, &c, &opts, &j, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(j.n_others, 1); /* a; not b (gone), h (hidden) nor c */
    assert_non_null(j.others);
    assert_string_equal(j.others[0].username, "a");
    assert_string_equal(j.others[0].user_id, "user-a");
    assert_int_equal(j.others[0].conn, 1);
    assert_string_equal(j.others[0].status, "status of a");

    /* The listing is a copy: a leaving and an update do not touch it. */
    assert_int_equal(kn_tracker_update(f->t, &s, 1, "changed", false), KN_OK);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 1), KN_OK);
    assert_string_equal(j.others[0].status, "status of a");
    assert_string_equal(j.others[0].username, "a");
    kn_free(j.others);

    /* Without list_others nothing is listed. */
    kn_presence d = presence(5, "d");
    assert_int_equal(kn_tracker_track(f->t, &s, &d, NULL, &j, f->msg, sizeof f->msg), KN_OK);
    assert_null(j.others);
    assert_int_equal(j.n_others, 0);
}

/* --- updates ---------------------------------------------------------------------- */

static void an_update_is_a_leave_of_the_old_presence_and_a_join_of_the_new(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_STATUS, "user-b", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    b.status = "old";
    join_both(f, &s, &a, &b);

    assert_int_equal(kn_tracker_update(f->t, &s, 2, "new", false), KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.d[0].n, 1);
    assert_int_equal(f->rec.d[0].to[0], 1); /* not b */
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_leaves, 1);
    assert_int_equal(ev->n_joins, 1);
    expect_user(ev->leaves[0], &b, "old");
    expect_user(ev->joins[0], &b, "new");

    kn_presence got;
    char status[32];
    assert_int_equal(kn_tracker_get(f->t, &s, "user-b", "sess-b", &got, status, sizeof status),
                     KN_OK);
    assert_string_equal(got.status, "new");

    /* A NULL status clears it. */
    reset(&f->rec);
    assert_int_equal(kn_tracker_update(f->t, &s, 2, NULL, false), KN_OK);
    ev = presence_event(&f->rec.d[0], &s);
    expect_user(ev->leaves[0], &b, "new");
    expect_user(ev->joins[0], &b, NULL);
    assert_int_equal(kn_tracker_get(f->t, &s, "user-b", "sess-b", &got, status, sizeof status),
                     KN_OK);
    assert_null(got.status);
}

static void hiding_or_showing_a_presence_sends_only_the_visible_half(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    join_both(f, &s, &a, &b);

    assert_int_equal(kn_tracker_update(f->t, &s, 2, "away", true), KN_OK); /* visible→hidden */
    assert_int_equal(f->rec.n, 1);
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_joins, 0);
    assert_int_equal(ev->n_leaves, 1);
    expect_user(ev->leaves[0], &b, NULL);
    reset(&f->rec);

    assert_int_equal(kn_tracker_update(f->t, &s, 2, "still away", true), KN_OK); /* hidden */
    assert_int_equal(f->rec.n, 0);
    kn_presence *list;
    size_t n;
    assert_int_equal(kn_tracker_list(f->t, &s, true, false, &list, &n), KN_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].status, "still away");
    kn_free(list);

    assert_int_equal(kn_tracker_update(f->t, &s, 2, "back", false), KN_OK); /* hidden→visible */
    assert_int_equal(f->rec.n, 1);
    ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_joins, 1);
    assert_int_equal(ev->n_leaves, 0);
    expect_user(ev->joins[0], &b, "back");
    assert_int_equal(f->rec.d[0].to[0], 1);

    assert_int_equal(kn_tracker_update(f->t, &s, 9, "x", false), KN_ERR_NOT_FOUND);
    kn_stream absent = stream(KN_STREAM_CHANNEL, "elsewhere", "");
    assert_int_equal(kn_tracker_update(f->t, &absent, 2, "x", false), KN_ERR_NOT_FOUND);
}

static void a_status_longer_than_the_limit_is_an_invalid_argument(void **state)
{
    fixture *f = *state;
    static char longest[KN_STREAM_STATUS_MAX + 2];
    memset(longest, 'x', KN_STREAM_STATUS_MAX + 1); /* one byte too many */
    kn_stream s = stream(KN_STREAM_STATUS, "user-a", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    a.status = longest;
    assert_int_equal(try_join(f, &s, &a, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(f->msg, "status"));
    assert_int_equal(kn_tracker_count(f->t, &s), 0);
    assert_int_equal(stats(f).streams, 0);

    longest[KN_STREAM_STATUS_MAX] = 0; /* exactly the limit */
    assert_int_equal(try_join(f, &s, &a, NULL), KN_OK);
    join(f, &s, &b);
    reset(&f->rec);
    longest[KN_STREAM_STATUS_MAX] = 'x';
    assert_int_equal(kn_tracker_update(f->t, &s, 2, longest, false), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(f->rec.n, 0);
    kn_presence got;
    static char status[KN_STREAM_STATUS_MAX + 8]; /* room for a wrongly stored one */
    assert_int_equal(kn_tracker_get(f->t, &s, "user-b", "sess-b", &got, status, sizeof status),
                     KN_OK);
    assert_null(got.status); /* unchanged */
}

/* --- leaving ---------------------------------------------------------------------- */

static void an_untrack_tells_the_others_and_the_last_leave_frees_the_stream(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    b.status = "bye";
    kn_tracker_joined j = join(f, &s, &a);
    join(f, &s, &b);
    kn_tracker_stats st = stats(f);
    assert_int_equal(st.streams, 1);
    assert_int_equal(st.presences, 2);
    assert_int_equal(st.per_mode[KN_STREAM_CHANNEL], 1);
    reset(&f->rec);

    assert_int_equal(kn_tracker_untrack(f->t, &s, 9), KN_ERR_NOT_FOUND); /* not a member */
    assert_int_equal(kn_tracker_untrack(f->t, &s, 2), KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.d[0].n, 1);
    assert_int_equal(f->rec.d[0].to[0], 1);
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_joins, 0);
    assert_int_equal(ev->n_leaves, 1);
    expect_user(ev->leaves[0], &b, "bye");
    assert_int_equal(kn_tracker_untrack(f->t, &s, 2), KN_ERR_NOT_FOUND); /* gone already */
    reset(&f->rec);

    assert_int_equal(kn_tracker_untrack(f->t, &s, 1), KN_OK);
    assert_int_equal(f->rec.n, 0); /* nobody left to tell */
    assert_int_equal(kn_tracker_count(f->t, &s), 0);
    st = stats(f);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.presences, 0);
    assert_int_equal(st.per_mode[KN_STREAM_CHANNEL], 0);
    kn_stream back;
    assert_int_equal(kn_tracker_stream_of(f->t, j.handle, &back), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 1), KN_ERR_NOT_FOUND);

    /* The same key makes a new stream with a new handle. */
    kn_tracker_joined again = join(f, &s, &a);
    assert_true(again.created);
    assert_int_not_equal(again.handle, j.handle);
}

static void untrack_all_takes_a_connection_off_every_stream_with_a_leave_on_each(void **state)
{
    fixture *f = *state;
    kn_stream s1 = stream(KN_STREAM_CHANNEL, "one", ""), s2 = stream(KN_STREAM_PARTY, "two", ""),
              s3 = stream(KN_STREAM_CHANNEL, "three", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), c = presence(3, "c");
    join(f, &s1, &a);
    join(f, &s2, &a);
    join(f, &s3, &a);
    join(f, &s1, &b);
    join(f, &s2, &c);
    reset(&f->rec);

    kn_tracker_untrack_all(f->t, 1);
    assert_int_equal(f->rec.n, 2); /* s1 tells b, s2 tells c, s3 had nobody else */
    bool told_b = false, told_c = false;
    for (size_t i = 0; i < f->rec.n; i++) {
        delivery *d = &f->rec.d[i];
        assert_int_equal(d->n, 1);
        const kn_stream *s = d->to[0] == 2 ? &s1 : &s2;
        told_b |= d->to[0] == 2;
        told_c |= d->to[0] == 3;
        Kaos__V1__StreamPresenceEvent *ev = presence_event(d, s);
        assert_int_equal(ev->n_joins, 0);
        assert_int_equal(ev->n_leaves, 1);
        expect_user(ev->leaves[0], &a, NULL);
    }
    assert_true(told_b && told_c);
    assert_int_equal(kn_tracker_count(f->t, &s1), 1);
    assert_int_equal(kn_tracker_count(f->t, &s2), 1);
    assert_int_equal(kn_tracker_count(f->t, &s3), 0);
    kn_tracker_stats st = stats(f);
    assert_int_equal(st.streams, 2);
    assert_int_equal(st.presences, 2);
    assert_int_equal(st.per_mode[KN_STREAM_CHANNEL], 1);
    assert_int_equal(st.per_mode[KN_STREAM_PARTY], 1);

    kn_tracker_untrack_all(f->t, 1); /* a no-op now */
    join_a_whole_session_of_streams(f, &a);
}

static void untrack_by_handle_needs_the_streams_mode(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_MATCH_RELAYED, "match", "node");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    kn_tracker_joined j = join(f, &s, &a);
    join(f, &s, &b);
    reset(&f->rec);
    assert_int_equal(kn_tracker_untrack_handle(f->t, KN_STREAM_CHANNEL, j.handle, 2),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_untrack_handle(f->t, KN_STREAM_MATCH_RELAYED, j.handle + 100, 2),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_count(f->t, &s), 2);
    assert_int_equal(kn_tracker_untrack_handle(f->t, KN_STREAM_MATCH_RELAYED, j.handle, 2), KN_OK);
    assert_int_equal(f->rec.n, 1);
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    expect_user(ev->leaves[0], &b, NULL);
    assert_int_equal(kn_tracker_count(f->t, &s), 1);
}

static void close_takes_everyone_off_without_events_and_says_how_many(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", ""), other = stream(KN_STREAM_CHANNEL, "o", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), h = presence(3, "h");
    a.status = "a's";
    h.hidden = true;
    join(f, &s, &a);
    join(f, &s, &b);
    join(f, &s, &h);
    join(f, &other, &b);
    reset(&f->rec);

    assert_int_equal(kn_tracker_close(f->t, &s), 3);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(kn_tracker_count(f->t, &s), 0);
    kn_tracker_stats st = stats(f);
    assert_int_equal(st.streams, 1);
    assert_int_equal(st.presences, 1);
    assert_int_equal(st.per_mode[KN_STREAM_CHANNEL], 1);
    assert_int_equal(kn_tracker_close(f->t, &s), 0);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 1), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_count(f->t, &other), 1); /* b's other stream stands */

    join_a_whole_session_of_streams(f, &a); /* a's record went with the stream */
}

/* --- limits ----------------------------------------------------------------------- */

static void a_stream_holds_the_configs_default_unless_its_mode_or_track_says_otherwise(void **state)
{
    fixture *f = *state;
    kn_presence p[6];
    for (int i = 0; i < 6; i++) {
        char name[8];
        snprintf(name, sizeof name, "p%d", i);
        p[i] = presence((kn_conn_id)i + 1, name);
    }

    /* The config's default (PER_STREAM), an unnamed mode: "stream is full". */
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    for (int i = 0; i < PER_STREAM; i++)
        join(f, &s, &p[i]);
    reset(&f->rec);
    assert_int_equal(try_join(f, &s, &p[PER_STREAM], NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "stream is full");
    assert_int_equal(kn_tracker_count(f->t, &s), PER_STREAM);
    assert_int_equal(f->rec.n, 0);

    /* The mode's own size and name. */
    kn_tracker_mode party = {.name = "party", .max_presences = 2};
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_PARTY, &party), KN_OK);
    kn_stream ps = stream(KN_STREAM_PARTY, "party", "");
    kn_tracker_joined j = join(f, &ps, &p[0]);
    assert_int_equal(j.max_size, 2);
    join(f, &ps, &p[1]);
    assert_int_equal(try_join(f, &ps, &p[2], NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "party is full");

    /* The track's max_size beats both, when the track creates the stream. */
    kn_tracker_opts big = {.max_size = 5};
    kn_stream bs = stream(KN_STREAM_PARTY, "big", "");
    assert_int_equal(kn_tracker_track(f->t, &bs, &p[0], &big, &j, f->msg, sizeof f->msg), KN_OK);
    assert_int_equal(j.max_size, 5);
    for (int i = 1; i < 5; i++)
        assert_int_equal(try_join(f, &bs, &p[i], NULL), KN_OK);
    assert_int_equal(try_join(f, &bs, &p[5], &big), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "party is full");

    kn_tracker_opts one = {.max_size = 1};
    kn_stream os = stream(KN_STREAM_CHANNEL, "solo", "");
    assert_int_equal(try_join(f, &os, &p[5], &one), KN_OK);
    assert_int_equal(try_join(f, &os, &p[4], NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "stream is full");

    /* A place frees with a leave. */
    assert_int_equal(kn_tracker_untrack(f->t, &ps, 1), KN_OK);
    assert_int_equal(try_join(f, &ps, &p[2], NULL), KN_OK);
}

static void a_session_on_too_many_streams_is_refused(void **state)
{
    fixture *f = *state;
    kn_presence a = presence(1, "a");
    kn_stream s[PER_SESSION + 1];
    for (int i = 0; i <= PER_SESSION; i++) {
        char name[8];
        snprintf(name, sizeof name, "s%d", i);
        s[i] = stream(i % 2 ? KN_STREAM_CHANNEL : KN_STREAM_GROUP, name, "");
    }
    for (int i = 0; i < PER_SESSION; i++)
        join(f, &s[i], &a);
    assert_int_equal(try_join(f, &s[PER_SESSION], &a, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    char want[64];
    snprintf(want, sizeof want, "session is on too many streams (%d)", PER_SESSION);
    assert_string_equal(f->msg, want);
    assert_int_equal(stats(f).streams, PER_SESSION); /* the refused one was not made */
    assert_int_equal(kn_tracker_count(f->t, &s[PER_SESSION]), 0);

    assert_int_equal(kn_tracker_untrack(f->t, &s[0], 1), KN_OK);
    assert_int_equal(try_join(f, &s[PER_SESSION], &a, NULL), KN_OK);
}

static void a_modes_limit_per_session_counts_only_that_mode(void **state)
{
    fixture *f = *state;
    kn_tracker_mode party = {.name = "party", .max_per_session = 2};
    kn_tracker_mode group = {.max_per_session = 1}; /* unnamed */
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_PARTY, &party), KN_OK);
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_GROUP, &group), KN_OK);
    kn_presence a = presence(1, "a");
    kn_stream p1 = stream(KN_STREAM_PARTY, "p1", ""), p2 = stream(KN_STREAM_PARTY, "p2", ""),
              p3 = stream(KN_STREAM_PARTY, "p3", ""), g1 = stream(KN_STREAM_GROUP, "g1", ""),
              g2 = stream(KN_STREAM_GROUP, "g2", ""), c1 = stream(KN_STREAM_CHANNEL, "c1", "");
    join(f, &p1, &a);
    join(f, &p2, &a);
    assert_int_equal(try_join(f, &p3, &a, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "party limit per session reached (2)");
    join(f, &g1, &a); /* other modes are not counted against party */
    assert_int_equal(try_join(f, &g2, &a, NULL), KN_ERR_RESOURCE_EXHAUSTED);
    assert_string_equal(f->msg, "stream limit per session reached (1)");
    join(f, &c1, &a); /* a mode without a limit of its own: only the total */

    /* Another connection has its own count. */
    kn_presence b = presence(2, "b");
    join(f, &p3, &b);

    /* Leaving one party makes room for another. */
    assert_int_equal(kn_tracker_untrack(f->t, &p1, 1), KN_OK);
    assert_int_equal(try_join(f, &p3, &a, NULL), KN_OK);
}

static void must_exist_does_not_create_a_stream(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    kn_tracker_opts existing = {.must_exist = true};
    assert_int_equal(try_join(f, &s, &a, &existing), KN_ERR_NOT_FOUND);
    assert_string_equal(f->msg, "stream not found");
    assert_int_equal(stats(f).streams, 0);
    assert_int_equal(stats(f).presences, 0);

    join(f, &s, &a);
    kn_tracker_joined j;
    assert_int_equal(kn_tracker_track(f->t, &s, &b, &existing, &j, f->msg, sizeof f->msg), KN_OK);
    assert_false(j.created);
    assert_int_equal(j.count, 2);
}

static void a_malformed_stream_is_refused(void **state)
{
    fixture *f = *state;
    char msg[128];
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "label");
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_OK);

    s.mode = KN_STREAM_MODES;
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "mode"));
    s.mode = 255;
    assert_int_equal(kn_stream_check(&s, NULL, 0), KN_ERR_INVALID_ARGUMENT);
    s.mode = KN_STREAM_PARTY;
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_OK);

    memset(s.subject, 'a', KN_STREAM_ID_MAX); /* 36 bytes: the most */
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_OK);
    memset(s.subject, 'a', sizeof s.subject); /* 37 bytes, no NUL */
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "subject"));
    kn_presence a = presence(1, "a");
    assert_int_equal(try_join(f, &s, &a, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(f->msg, "36"));

    s = stream(KN_STREAM_CHANNEL, "room", "");
    memset(s.subcontext, 'b', sizeof s.subcontext);
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "subcontext"));

    s = stream(KN_STREAM_CHANNEL, "room", "");
    memset(s.label, 'c', KN_STREAM_LABEL_MAX); /* 64 bytes: the most */
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_OK);
    memset(s.label, 'c', sizeof s.label);
    assert_int_equal(kn_stream_check(&s, msg, sizeof msg), KN_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(msg, "label"));
    assert_int_equal(try_join(f, &s, &a, NULL), KN_ERR_INVALID_ARGUMENT);

    s = stream(KN_STREAM_CHANNEL, "room", "");
    s.mode = KN_STREAM_MODES;
    assert_int_equal(try_join(f, &s, &a, NULL), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(stats(f).streams, 0);
}

static void a_malformed_stream_is_on_no_lookup(void **state)
{
    fixture *f = *state;
    kn_presence a = presence(1, "a");
    kn_stream good = stream(KN_STREAM_CHANNEL, "room", "");
    join(f, &good, &a);
    /* Exactly a stream's size, so that reading past its label is caught. */
    kn_stream *bad = malloc(sizeof *bad);
    assert_non_null(bad);
    *bad = good;
    memset(bad->label, 'c', sizeof bad->label);
    memset(bad->subject, 'a', sizeof bad->subject);
    memset(bad->subcontext, 'b', sizeof bad->subcontext);
    assert_int_equal(kn_tracker_count(f->t, bad), 0);
    assert_int_equal(kn_tracker_update(f->t, bad, 1, "x", false), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_untrack(f->t, bad, 1), KN_ERR_NOT_FOUND);
    kn_presence *list;
    size_t n;
    assert_int_equal(kn_tracker_list(f->t, bad, true, true, &list, &n), KN_OK);
    assert_int_equal(n, 0);
    kn_presence got;
    assert_int_equal(kn_tracker_get(f->t, bad, "user-a", "sess-a", &got, NULL, 0),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_send(f->t, bad, 0, 2, (const uint8_t *)"x", 1, true),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_close(f->t, bad), 0);
    bad->mode = KN_STREAM_MODES;
    assert_int_equal(kn_tracker_count(f->t, bad), 0);
    free(bad);
    assert_int_equal(kn_tracker_count(f->t, &good), 1);
    assert_int_equal(f->rec.n, 0);
}

static void create_and_mode_set_refuse_what_is_out_of_range(void **state)
{
    (void)state;
    recorder rec = {0};
    kn_tracker_sink sink = {record, &rec}, none = {NULL, NULL};
    kn_tracker_config good;
    kn_tracker_config_default(&good);
    kn_tracker *t = (kn_tracker *)&rec;
    kn_tracker_config c = good;
    c.max_per_stream = 0;
    assert_int_equal(kn_tracker_create(&c, &sink, &t), KN_ERR_INVALID_ARGUMENT);
    assert_null(t);
    c = good;
    c.max_per_stream = 1000001;
    assert_int_equal(kn_tracker_create(&c, &sink, &t), KN_ERR_INVALID_ARGUMENT);
    c = good;
    c.max_per_session = 0;
    assert_int_equal(kn_tracker_create(&c, &sink, &t), KN_ERR_INVALID_ARGUMENT);
    c = good;
    c.max_per_session = 100001;
    assert_int_equal(kn_tracker_create(&c, &sink, &t), KN_ERR_INVALID_ARGUMENT);
    c = good;
    c.max_event_size = 255;
    assert_int_equal(kn_tracker_create(&c, &sink, &t), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_tracker_create(&good, &none, &t), KN_ERR_INVALID_ARGUMENT);

    assert_int_equal(kn_tracker_create(&good, &sink, &t), KN_OK);
    kn_tracker_mode m = {.name = "x"};
    assert_int_equal(kn_tracker_mode_set(t, KN_STREAM_MODES, &m), KN_ERR_INVALID_ARGUMENT);
    assert_int_equal(kn_tracker_mode_set(t, KN_STREAM_MODES - 1, &m), KN_OK);
    kn_tracker_destroy(t);
    kn_tracker_destroy(NULL);
}

/* --- reading ---------------------------------------------------------------------- */

static void get_finds_a_presence_by_user_and_session_in_any_case(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_STATUS, "user", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    snprintf(a.user_id, sizeof a.user_id, "5a0c7e2e-0000-4000-8000-00000000abcd");
    snprintf(a.session_id, sizeof a.session_id, "9f1e0000-0000-4000-8000-0000000000ef");
    a.status = "hello";
    a.persistence = true;
    kn_tracker_joined ja = join(f, &s, &a);
    join(f, &s, &b);

    kn_presence got;
    char buf[16];
    assert_int_equal(kn_tracker_get(f->t, &s, "5A0C7E2E-0000-4000-8000-00000000ABCD",
                                    "9F1E0000-0000-4000-8000-0000000000EF", &got, buf, sizeof buf),
                     KN_OK);
    assert_int_equal(got.conn, 1);
    assert_int_equal(got.slot, ja.slot);
    assert_string_equal(got.username, "a");
    assert_true(got.persistence);
    assert_ptr_equal(got.status, buf);
    assert_string_equal(buf, "hello");

    /* The status is copied only when it fits with its NUL. */
    assert_int_equal(kn_tracker_get(f->t, &s, a.user_id, a.session_id, &got, buf, 6), KN_OK);
    assert_ptr_equal(got.status, buf);
    memset(buf, '#', sizeof buf);
    assert_int_equal(kn_tracker_get(f->t, &s, a.user_id, a.session_id, &got, buf, 5), KN_OK);
    assert_null(got.status);
    assert_int_equal(buf[0], '#');
    assert_int_equal(kn_tracker_get(f->t, &s, a.user_id, a.session_id, &got, NULL, 0), KN_OK);
    assert_null(got.status);
    assert_int_equal(got.conn, 1);

    /* Both must match. */
    assert_int_equal(kn_tracker_get(f->t, &s, a.user_id, "sess-b", &got, buf, sizeof buf),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_get(f->t, &s, "user-b", a.session_id, &got, buf, sizeof buf),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_get(f->t, &s, "USER-B", "Sess-B", &got, buf, sizeof buf), KN_OK);
    assert_int_equal(got.conn, 2);
    kn_stream absent = stream(KN_STREAM_STATUS, "nobody", "");
    assert_int_equal(kn_tracker_get(f->t, &absent, "user-b", "sess-b", &got, buf, sizeof buf),
                     KN_ERR_NOT_FOUND);
}

/* --- delivery --------------------------------------------------------------------- */

static void send_reaches_everyone_on_the_stream_but_skip_hidden_included(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), h = presence(3, "h");
    h.hidden = true;
    join(f, &s, &a);
    join(f, &s, &b);
    join(f, &s, &h);
    reset(&f->rec);
    f->rec.raw = true;

    assert_int_equal(kn_tracker_send(f->t, &s, 1, 7, (const uint8_t *)"hey", 3, false), KN_OK);
    assert_int_equal(f->rec.n, 1);
    delivery *d = &f->rec.d[0];
    assert_int_equal(d->n, 2);
    assert_true(sent_to(d, 2) && sent_to(d, 3));
    assert_false(sent_to(d, 1));
    assert_int_equal(d->channel, 7);
    assert_false(d->reliable);
    assert_int_equal(d->len, 3);
    assert_memory_equal(d->data, "hey", 3);

    assert_int_equal(kn_tracker_send(f->t, &s, 0, 2, (const uint8_t *)"all", 3, true), KN_OK);
    assert_int_equal(f->rec.n, 2);
    assert_int_equal(f->rec.d[1].n, 3);
    assert_true(f->rec.d[1].reliable);

    kn_stream absent = stream(KN_STREAM_CHANNEL, "nobody", "");
    assert_int_equal(kn_tracker_send(f->t, &absent, 0, 2, (const uint8_t *)"x", 1, true),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(f->rec.n, 2);

    /* The sink's answer comes back, but for recipients that left meanwhile. */
    f->rec.answer = KN_ERR_NOT_FOUND;
    assert_int_equal(kn_tracker_send(f->t, &s, 0, 2, (const uint8_t *)"x", 1, true), KN_OK);
    f->rec.answer = KN_ERR_NOMEM;
    assert_int_equal(kn_tracker_send(f->t, &s, 0, 2, (const uint8_t *)"x", 1, true), KN_ERR_NOMEM);
    f->rec.answer = KN_OK;

    /* Skipping the only member sends nothing, and is no error. */
    kn_stream solo = stream(KN_STREAM_CHANNEL, "solo", "");
    join(f, &solo, &a);
    size_t before = f->rec.n;
    assert_int_equal(kn_tracker_send(f->t, &solo, 1, 2, (const uint8_t *)"x", 1, true), KN_OK);
    assert_int_equal(f->rec.n, before);
}

/* A forward's bytes: "<handle>:<sender's slot>:<sender's username>". */
typedef struct forward_seen {
    int calls;
    uint32_t handle;
    kn_conn_id sender;
    bool give_nothing; /* as when the bytes do not fit */
} forward_seen;

static size_t build_forward(void *ud, const kn_presence *sender, uint32_t handle, uint8_t *buf,
                            size_t cap)
{
    forward_seen *seen = ud;
    seen->calls++;
    seen->handle = handle;
    seen->sender = sender->conn;
    int n = snprintf((char *)buf, cap, "%u:%u:%s", handle, sender->slot, sender->username);
    assert_true(n > 0 && (size_t)n < cap);
    return seen->give_nothing ? 0 : (size_t)n;
}

static void forward_reaches_the_other_members_or_only_the_listed_slots(void **state)
{
    fixture *f = *state;
    kn_tracker_mode match = {.name = "match", .max_presences = 8};
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_MATCH_RELAYED, &match), KN_OK);
    kn_stream s = stream(KN_STREAM_MATCH_RELAYED, "m", "node");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), c = presence(3, "c"),
                h = presence(4, "h");
    h.hidden = true;
    kn_tracker_joined ja = join(f, &s, &a);
    kn_tracker_joined jb = join(f, &s, &b);
    kn_tracker_joined jc = join(f, &s, &c);
    join(f, &s, &h);
    reset(&f->rec);
    f->rec.raw = true;

    forward_seen seen = {0};
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, ja.handle, 1, NULL, 0,
                                        build_forward, &seen, 4, false),
                     KN_OK);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.handle, ja.handle);
    assert_int_equal(seen.sender, 1);
    assert_int_equal(f->rec.n, 1);
    delivery *d = &f->rec.d[0];
    assert_int_equal(d->n, 3);
    assert_true(sent_to(d, 2) && sent_to(d, 3) && sent_to(d, 4));
    assert_int_equal(d->channel, 4);
    assert_false(d->reliable);
    char want[64];
    snprintf(want, sizeof want, "%u:%u:a", ja.handle, ja.slot);
    assert_int_equal(d->len, strlen(want));
    assert_memory_equal(d->data, want, d->len);

    uint32_t only_c[] = {jc.slot};
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, ja.handle, 2, only_c, 1,
                                        build_forward, &seen, 5, true),
                     KN_OK);
    assert_int_equal(f->rec.n, 2);
    d = &f->rec.d[1];
    assert_int_equal(d->n, 1);
    assert_int_equal(d->to[0], 3);
    assert_true(d->reliable);
    snprintf(want, sizeof want, "%u:%u:b", ja.handle, jb.slot);
    assert_memory_equal(d->data, want, strlen(want));

    uint32_t a_and_self[] = {ja.slot, jb.slot, 999};
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, ja.handle, 2, a_and_self, 3,
                                        build_forward, &seen, 5, true),
                     KN_OK);
    assert_int_equal(f->rec.n, 3);
    assert_int_equal(f->rec.d[2].n, 1); /* not the sender itself, nor an unknown slot */
    assert_int_equal(f->rec.d[2].to[0], 1);

    uint32_t nobody[] = {999};
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, ja.handle, 2, nobody, 1,
                                        build_forward, &seen, 5, true),
                     KN_OK);
    assert_int_equal(f->rec.n, 3);
}

static void forward_refuses_a_stranger_another_mode_and_bytes_that_do_not_fit(void **state)
{
    fixture *f = *state;
    kn_stream s = stream(KN_STREAM_MATCH_RELAYED, "m", "node");
    kn_stream other = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    kn_tracker_joined j = join(f, &s, &a);
    join(f, &s, &b);
    kn_tracker_joined jo = join(f, &other, &a);
    reset(&f->rec);
    f->rec.raw = true;
    forward_seen seen = {0};

    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, j.handle, 9, NULL, 0,
                                        build_forward, &seen, 4, true),
                     KN_ERR_NOT_FOUND); /* not a member */
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_CHANNEL, j.handle, 1, NULL, 0,
                                        build_forward, &seen, 4, true),
                     KN_ERR_NOT_FOUND); /* the stream is of another mode */
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, jo.handle, 1, NULL, 0,
                                        build_forward, &seen, 4, true),
                     KN_ERR_NOT_FOUND); /* a handle of a channel */
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, 0, 1, NULL, 0, build_forward,
                                        &seen, 4, true),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(seen.calls, 0); /* nothing was built for a refusal */

    seen.give_nothing = true;
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, j.handle, 1, NULL, 0,
                                        build_forward, &seen, 4, true),
                     KN_ERR_TOO_LARGE);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(f->rec.n, 0);

    /* After the stream has gone its handle finds nothing. */
    seen.give_nothing = false;
    kn_tracker_untrack_all(f->t, 1);
    kn_tracker_untrack_all(f->t, 2);
    reset(&f->rec);
    assert_int_equal(kn_tracker_forward(f->t, KN_STREAM_MATCH_RELAYED, j.handle, 2, NULL, 0,
                                        build_forward, &seen, 4, true),
                     KN_ERR_NOT_FOUND);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(seen.calls, 1);
}

/* --- a mode's own events ---------------------------------------------------------- */

/* A mode's event: "<J|L><joins>:<leaves>:<first join's or leave's username>". */
typedef struct mode_seen {
    int calls;
    uint32_t handle;
    kn_stream stream;
    bool give_nothing;
} mode_seen;

static size_t build_mode_event(void *ud, const kn_stream *s, uint32_t handle,
                               const kn_presence *joins, size_t n_joins, const kn_presence *leaves,
                               size_t n_leaves, uint8_t *buf, size_t cap)
{
    mode_seen *seen = ud;
    seen->calls++;
    seen->handle = handle;
    seen->stream = *s;
    if (seen->give_nothing) return 0;
    const kn_presence *who = n_joins ? &joins[0] : &leaves[0];
    int n = snprintf((char *)buf, cap, "%c%zu:%zu:%s", n_joins ? 'J' : 'L', n_joins, n_leaves,
                     who->username);
    return (size_t)n;
}

static void a_modes_own_build_makes_its_events_and_gets_the_streams_handle(void **state)
{
    fixture *f = *state;
    mode_seen seen = {0};
    kn_tracker_mode status = {.name = "status", .build = build_mode_event, .ud = &seen};
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_STATUS, &status), KN_OK);
    kn_stream s = stream(KN_STREAM_STATUS, "user-a", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    kn_tracker_joined j = join(f, &s, &a);
    assert_int_equal(seen.calls, 0); /* nobody to tell: nothing built */
    f->rec.raw = true;
    join(f, &s, &b);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.handle, j.handle);
    assert_int_equal(seen.stream.mode, KN_STREAM_STATUS);
    assert_string_equal(seen.stream.subject, "user-a");
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.d[0].to[0], 1);
    assert_int_equal(f->rec.d[0].channel, KN_CHANNEL_CONTROL);
    assert_memory_equal(f->rec.d[0].data, "J1:0:b", 6);

    assert_int_equal(kn_tracker_update(f->t, &s, 2, "busy", false), KN_OK);
    assert_memory_equal(f->rec.d[1].data, "J1:1:b", 6);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 2), KN_OK);
    assert_memory_equal(f->rec.d[2].data, "L0:1:b", 6);
    assert_int_equal(seen.calls, 3);
    assert_int_equal(stats(f).events, 3);

    /* Other modes keep StreamPresenceEvent. */
    f->rec.raw = false;
    kn_stream c = stream(KN_STREAM_CHANNEL, "room", "");
    join(f, &c, &a);
    join(f, &c, &b);
    assert_int_equal(seen.calls, 3);
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[3], &c);
    expect_user(ev->joins[0], &b, NULL);
}

static void an_event_that_cannot_be_built_or_sent_is_dropped_and_counted(void **state)
{
    fixture *f = *state;
    mode_seen seen = {.give_nothing = true};
    kn_tracker_mode party = {.build = build_mode_event, .ud = &seen};
    assert_int_equal(kn_tracker_mode_set(f->t, KN_STREAM_PARTY, &party), KN_OK);
    kn_stream s = stream(KN_STREAM_PARTY, "p", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b");
    join(f, &s, &a);
    join(f, &s, &b); /* the join stands; its event does not */
    assert_int_equal(seen.calls, 1);
    assert_int_equal(f->rec.n, 0);
    assert_int_equal(kn_tracker_count(f->t, &s), 2);
    kn_tracker_stats st = stats(f);
    assert_int_equal(st.events_dropped, 1);
    assert_int_equal(st.events, 0);

    /* A sink out of memory drops it too. */
    kn_stream c = stream(KN_STREAM_CHANNEL, "room", "");
    join(f, &c, &a);
    f->rec.answer = KN_ERR_NOMEM;
    join(f, &c, &b);
    f->rec.answer = KN_OK;
    assert_int_equal(f->rec.n, 1);
    st = stats(f);
    assert_int_equal(st.events_dropped, 2);
    assert_int_equal(st.events, 0);
}

static void a_default_event_over_max_event_size_is_dropped(void **state)
{
    (void)state;
    recorder rec = {0};
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    cfg.max_event_size = 256;
    kn_tracker_sink sink = {record, &rec};
    kn_tracker *t;
    assert_int_equal(kn_tracker_create(&cfg, &sink, &t), KN_OK);
    static char big[KN_STREAM_STATUS_MAX + 1];
    memset(big, 's', KN_STREAM_STATUS_MAX);
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(1, "a"), b = presence(2, "b"), c = presence(3, "c");
    b.status = big;
    char msg[64];
    assert_int_equal(kn_tracker_track(t, &s, &a, NULL, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(kn_tracker_track(t, &s, &b, NULL, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(rec.n, 0);
    assert_int_equal(kn_tracker_track(t, &s, &c, NULL, NULL, msg, sizeof msg), KN_OK);
    assert_int_equal(rec.n, 1); /* a small one still goes */
    kn_tracker_stats st;
    kn_tracker_stats_get(t, &st);
    assert_int_equal(st.events_dropped, 1);
    assert_int_equal(st.events, 1);
    reset(&rec);
    kn_tracker_destroy(t);
}

/* --- allocation failures ---------------------------------------------------------- */

static size_t build_tiny(void *ud, const kn_stream *s, uint32_t handle, const kn_presence *joins,
                         size_t n_joins, const kn_presence *leaves, size_t n_leaves, uint8_t *buf,
                         size_t cap)
{
    (void)ud, (void)s, (void)handle, (void)joins, (void)leaves;
    buf[0] = (uint8_t)n_joins;
    buf[1] = (uint8_t)n_leaves;
    return 2;
}

#define CHURN_CONNS 7

/* Keeps the first error; the run goes on, so later calls meet a tracker
 * that has just failed. */
static void note(int *first, int rc)
{
    if (rc && !*first) *first = rc;
}

/* After any failure the tracker's counts agree with what it lists. */
static void check_consistent(kn_tracker *t, const kn_stream *s, size_t n)
{
    kn_tracker_stats st;
    kn_tracker_stats_get(t, &st);
    uint64_t streams = 0, presences = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = kn_tracker_count(t, &s[i]);
        streams += c > 0;
        presences += c;
    }
    assert_int_equal(st.streams, streams);
    assert_int_equal(st.presences, presences);
}

static int tracker_churn(void *arg)
{
    (void)arg;
    static recorder rec;
    memset(&rec, 0, sizeof rec);
    rec.count_only = true;
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    kn_tracker_sink sink = {record, &rec};
    kn_tracker *t;
    int rc = kn_tracker_create(&cfg, &sink, &t);
    if (rc) return rc;
    int first = KN_OK;
    kn_tracker_mode party = {.name = "party", .build = build_tiny};
    note(&first, kn_tracker_mode_set(t, KN_STREAM_PARTY, &party));

    /* Three shared streams, then three of conn 1's own. */
    kn_stream s[6] = {stream(KN_STREAM_CHANNEL, "room", ""), stream(KN_STREAM_PARTY, "p", ""),
                      stream(KN_STREAM_STATUS, "u", ""),     stream(KN_STREAM_GROUP, "x0", ""),
                      stream(KN_STREAM_GROUP, "x1", ""),     stream(KN_STREAM_GROUP, "x2", "")};
    char msg[128];
    kn_tracker_opts listing = {.list_others = true};
    /* Past the first growth of the member array (4) and of a connection's. */
    for (kn_conn_id c = 1; c <= CHURN_CONNS; c++) {
        char name[8];
        snprintf(name, sizeof name, "c%u", (unsigned)c);
        kn_presence p = presence(c, name);
        p.status = c % 2 ? "odd" : NULL;
        p.hidden = c == 3;
        kn_tracker_joined j;
        note(&first, kn_tracker_track(t, &s[0], &p, &listing, &j, msg, sizeof msg));
        kn_free(j.others);
        if (c <= 2)
            for (int k = 1; k < 3; k++)
                note(&first, kn_tracker_track(t, &s[k], &p, NULL, NULL, msg, sizeof msg));
        check_consistent(t, s, 6);
    }
    for (int k = 3; k < 6; k++) {
        kn_presence p = presence(1, "c1");
        note(&first, kn_tracker_track(t, &s[k], &p, NULL, NULL, msg, sizeof msg));
    }
    note(&first, kn_tracker_update(t, &s[0], 2, "changed", false));
    note(&first, kn_tracker_update(t, &s[0], 3, "shown", false));
    note(&first, kn_tracker_update(t, &s[1], 1, NULL, true));
    check_consistent(t, s, 6);
    kn_presence *list;
    size_t n;
    rc = kn_tracker_list(t, &s[0], true, true, &list, &n);
    note(&first, rc);
    if (!rc) kn_free(list);
    rc = kn_tracker_untrack(t, &s[0], 4);
    if (!first) assert_int_equal(rc, KN_OK); /* else its track may have failed */
    kn_tracker_untrack_all(t, 2);
    check_consistent(t, s, 6);
    kn_tracker_close(t, &s[1]);
    for (kn_conn_id c = 1; c <= CHURN_CONNS; c++)
        kn_tracker_untrack_all(t, c);
    kn_tracker_stats st;
    kn_tracker_stats_get(t, &st);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.presences, 0);
    for (int m = 0; m < KN_STREAM_MODES; m++)
        assert_int_equal(st.per_mode[m], 0);
    kn_tracker_destroy(t);
    reset(&rec);
    return first;
}

static void every_allocation_failure_is_refused_or_survived_without_a_leak(void **state)
{
    (void)state;
    assert_true(failalloc_sweep(tracker_churn, NULL) > 15);
}

/* --- threads ---------------------------------------------------------------------- */

#define THREADS        4
#define CONNS_EACH     12
#define ROUNDS         30
#define SHARED_STREAMS 3

/* may_be_on[conn][stream]: set before a track, cleared after the untrack
 * that took conn off has returned. The tracker may send to conn about a
 * stream only while it is set. */
static atomic_int may_be_on[THREADS * CONNS_EACH + 1][SHARED_STREAMS];
static atomic_long deliveries, bad_recipients, bad_events;

static int stream_index(const char *subject)
{
    return subject[0] == 's' && subject[1] >= '0' && subject[1] < '0' + SHARED_STREAMS &&
                   !subject[2]
               ? subject[1] - '0'
               : -1;
}

/* Runs under the tracker's lock on any of the threads: no cmocka here, only counters. */
static int check_recipients(void *ud, const kn_conn_id *conns, size_t n, uint8_t channel,
                            const uint8_t *data, size_t len, bool reliable)
{
    (void)ud, (void)reliable;
    atomic_fetch_add(&deliveries, 1);
    int idx;
    kn_conn_id about = 0;
    if (channel == KN_CHANNEL_CONTROL) {
        kn_envelope *env = NULL;
        if (kn_envelope_decode(data, len, &env) ||
            env->message_case != KAOS__V1__ENVELOPE__MESSAGE_STREAM_PRESENCE) {
            atomic_fetch_add(&bad_events, 1);
            kn_envelope_free(env);
            return KN_OK;
        }
        Kaos__V1__StreamPresenceEvent *ev = env->stream_presence;
        idx = stream_index(ev->stream->subject);
        const Kaos__V1__UserPresence *who = ev->n_joins ? ev->joins[0] : ev->leaves[0];
        about = (kn_conn_id)strtoull(who->username, NULL, 10);
        kn_envelope_free(env);
    } else { /* a send: its one byte is the stream */
        idx = len == 1 ? data[0] : -1;
    }
    if (idx < 0 || idx >= SHARED_STREAMS) {
        atomic_fetch_add(&bad_events, 1);
        return KN_OK;
    }
    for (size_t i = 0; i < n; i++) {
        bool ok = conns[i] >= 1 && conns[i] <= THREADS * CONNS_EACH && conns[i] != about &&
                  atomic_load(&may_be_on[conns[i]][idx]);
        for (size_t k = 0; k < i && ok; k++)
            ok = conns[k] != conns[i];
        if (!ok) atomic_fetch_add(&bad_recipients, 1);
    }
    return KN_OK;
}

typedef struct worker {
    kn_tracker *t;
    int id;
    long errors; /* results other than the expected ones */
} worker;

static kn_stream shared_stream(int i)
{
    char name[4] = {'s', (char)('0' + i), 0, 0};
    return stream(KN_STREAM_CHANNEL, name, "");
}

static void *churn(void *arg)
{
    worker *w = arg;
    bool on[CONNS_EACH][SHARED_STREAMS] = {{false}};
    char msg[128];
    for (int round = 0; round < ROUNDS; round++) {
        for (int k = 0; k < CONNS_EACH; k++) {
            kn_conn_id conn = (kn_conn_id)(w->id * CONNS_EACH + k + 1);
            int si = (k + round) % SHARED_STREAMS;
            kn_stream s = shared_stream(si);
            char name[16];
            snprintf(name, sizeof name, "%u", (unsigned)conn);
            kn_presence p = presence(conn, name); /* username: the connection's number */
            p.hidden = (k + round) % 5 == 0;
            p.status = round % 2 ? "odd round" : NULL;
            if (!on[k][si]) {
                atomic_store(&may_be_on[conn][si], 1);
                if (kn_tracker_track(w->t, &s, &p, NULL, NULL, msg, sizeof msg) == KN_OK)
                    on[k][si] = true;
                else
                    w->errors++;
            }
            if (kn_tracker_update(w->t, &s, conn, round % 3 ? "playing" : NULL, round % 4 == 0))
                w->errors++;
            if ((k + round) % 4 == 1) {
                uint8_t tag = (uint8_t)si;
                if (kn_tracker_send(w->t, &s, conn, 9, &tag, 1, false)) w->errors++;
            }
            if ((k + round) % 3 == 0) {
                if (kn_tracker_untrack(w->t, &s, conn)) w->errors++;
                on[k][si] = false;
                atomic_store(&may_be_on[conn][si], 0);
            }
            if ((k + round) % 7 == 3) {
                kn_tracker_untrack_all(w->t, conn);
                for (int i = 0; i < SHARED_STREAMS; i++) {
                    on[k][i] = false;
                    atomic_store(&may_be_on[conn][i], 0);
                }
            }
        }
    }
    for (int k = 0; k < CONNS_EACH; k++)
        kn_tracker_untrack_all(w->t, (kn_conn_id)(w->id * CONNS_EACH + k + 1));
    return NULL;
}

static void four_threads_on_shared_streams_leave_nothing_behind(void **state)
{
    (void)state;
    memset(may_be_on, 0, sizeof may_be_on);
    atomic_store(&deliveries, 0);
    atomic_store(&bad_recipients, 0);
    atomic_store(&bad_events, 0);
    kn_tracker_config cfg;
    kn_tracker_config_default(&cfg);
    kn_tracker_sink sink = {check_recipients, NULL};
    kn_tracker *t;
    assert_int_equal(kn_tracker_create(&cfg, &sink, &t), KN_OK);

    pthread_t th[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){t, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, churn, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);

    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].errors, 0);
    assert_int_equal(atomic_load(&bad_events), 0);
    assert_int_equal(atomic_load(&bad_recipients), 0);
    assert_true(atomic_load(&deliveries) > 100); /* the streams were shared */
    kn_tracker_stats st;
    kn_tracker_stats_get(t, &st);
    assert_int_equal(st.streams, 0);
    assert_int_equal(st.presences, 0);
    for (int m = 0; m < KN_STREAM_MODES; m++)
        assert_int_equal(st.per_mode[m], 0);
    assert_true(st.events > 0);
    assert_int_equal(st.events_dropped, 0);
    for (int i = 0; i < SHARED_STREAMS; i++) {
        kn_stream s = shared_stream(i);
        assert_int_equal(kn_tracker_count(t, &s), 0);
    }
    kn_tracker_destroy(t);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

static void count_shared(void *ud, const kn_stream *s, const kn_presence *members, size_t n)
{
    ++*(int *)ud;
}

/* --- the cluster: shared streams and mirrors ------------------------------------------- */

/* What the remote hook was told. */
typedef struct told {
    int on, off, changed, sent, joins, leaves;
    size_t members_at_on;
    kn_conn_id last_join, last_leave;
    char last_status[32];
} told;

static void r_interest(void *ud, const kn_stream *s, bool on, const kn_presence *members, size_t n)
{
    told *t = ud;
    if (on) {
        t->on++;
        t->members_at_on = n;
    } else {
        t->off++;
    }
}

static void r_changed(void *ud, const kn_stream *s, const kn_presence *join,
                      const kn_presence *leave)
{
    told *t = ud;
    t->changed++;
    if (join) {
        assert_int_equal(join->node, 0); /* only this node's own presences go out */
        t->joins++;
        t->last_join = join->conn;
        snprintf(t->last_status, sizeof t->last_status, "%s", join->status ? join->status : "");
    }
    if (leave) {
        assert_int_equal(leave->node, 0);
        t->leaves++;
        t->last_leave = leave->conn;
    }
}

static void r_sent(void *ud, const kn_stream *s, uint8_t channel, const uint8_t *data, size_t len,
                   bool reliable)
{
    ((told *)ud)->sent++;
}

static told share(fixture *f, told *t)
{
    memset(t, 0, sizeof *t);
    kn_tracker_set_remote(f->t, &(kn_tracker_remote){r_interest, r_changed, r_sent, t},
                          1u << KN_STREAM_CHANNEL);
    return *t;
}

/* A presence of node `node`, its connection id `conn` there. */
static kn_presence mirror(uint16_t node, kn_conn_id conn, const char *name)
{
    kn_presence p = presence(conn, name);
    p.node = node;
    return p;
}

static void local_changes_of_a_shared_stream_go_out_and_mirrors_count_here(void **state)
{
    fixture *f = *state;
    told t;
    share(f, &t);
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(11, "a"), far = mirror(2, 11, "far"); /* the same conn number */
    /* no member here yet: a peer's presence is not kept */
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &far), KN_ERR_NOT_FOUND);
    join(f, &s, &a);
    assert_int_equal(t.on, 1); /* the first here: interest, with the members */
    assert_int_equal(t.members_at_on, 1);
    assert_int_equal(t.changed, 0); /* the interest carried it */
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &far), KN_OK);
    assert_int_equal(f->rec.n, 1); /* a is told of far's join */
    assert_true(sent_to(&f->rec.d[0], 11));
    Kaos__V1__StreamPresenceEvent *ev = presence_event(&f->rec.d[0], &s);
    assert_int_equal(ev->n_joins, 1);
    expect_user(ev->joins[0], &far, NULL);
    assert_int_equal(kn_tracker_count(f->t, &s), 2); /* cluster-wide */
    kn_presence *list;
    size_t n;
    assert_int_equal(kn_tracker_list(f->t, &s, true, true, &list, &n), KN_OK);
    assert_int_equal(n, 2);
    kn_free(list);
    /* the mirror is not a connection here: not found by get, not untracked as a's conn */
    kn_presence got;
    assert_int_equal(kn_tracker_get(f->t, &s, far.user_id, far.session_id, &got, NULL, 0),
                     KN_ERR_NOT_FOUND);
    reset(&f->rec);
    /* a local update and a send go out; the send reaches local members only */
    assert_int_equal(kn_tracker_update(f->t, &s, 11, "busy", false), KN_OK);
    assert_int_equal(t.joins, 1);
    assert_string_equal(t.last_status, "busy");
    reset(&f->rec);
    f->rec.raw = true;
    assert_int_equal(
        kn_tracker_send(f->t, &s, 0, KN_CHANNEL_CONTROL, (const uint8_t *)"x", 1, true), KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(f->rec.d[0].n, 1); /* a only: far is on another node */
    assert_int_equal(t.sent, 1);
    /* what another node sent reaches a, and is not told back */
    assert_int_equal(
        kn_tracker_mirror_send(f->t, &s, KN_CHANNEL_CONTROL, (const uint8_t *)"y", 1, true), KN_OK);
    assert_int_equal(f->rec.n, 2);
    assert_int_equal(t.sent, 1);
    f->rec.raw = false;
    reset(&f->rec);
    /* far leaves: a is told; nothing goes out */
    int changed = t.changed;
    assert_int_equal(kn_tracker_mirror_leave(f->t, &s, 2, 11), KN_OK);
    assert_int_equal(f->rec.n, 1);
    assert_int_equal(presence_event(&f->rec.d[0], &s)->n_leaves, 1);
    assert_int_equal(t.changed, changed);
    assert_int_equal(kn_tracker_count(f->t, &s), 1);
    reset(&f->rec);
}

static void the_last_local_leave_drops_the_stream_with_its_mirrors(void **state)
{
    fixture *f = *state;
    told t;
    share(f, &t);
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", "");
    kn_presence a = presence(11, "a"), b = mirror(2, 5, "b"), c = mirror(3, 6, "c");
    join(f, &s, &a);
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &b), KN_OK);
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &c), KN_OK);
    /* full: PER_STREAM counts mirrors too */
    kn_presence d = mirror(3, 7, "d");
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &d), KN_ERR_RESOURCE_EXHAUSTED);
    assert_int_equal(stats(f).presences, 3);
    reset(&f->rec);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 11), KN_OK);
    assert_int_equal(t.leaves, 1); /* a's leave went out */
    assert_int_equal(t.off, 1);    /* and the interest ended */
    assert_int_equal(kn_tracker_count(f->t, &s), 0);
    assert_int_equal(stats(f).presences, 0);
    assert_int_equal(stats(f).streams, 0);
    assert_int_equal(f->rec.n, 0); /* nobody here to tell */
}

static void a_nodes_set_replaces_its_mirrors_and_a_dead_nodes_presences_leave(void **state)
{
    fixture *f = *state;
    told t;
    share(f, &t);
    kn_stream s = stream(KN_STREAM_CHANNEL, "room", ""), other = stream(KN_STREAM_CHANNEL, "b", "");
    kn_presence a = presence(11, "a"), a2 = presence(12, "a2");
    join(f, &s, &a);
    join(f, &other, &a2);
    kn_presence set[2] = {mirror(0, 5, "b"), mirror(0, 6, "c")};
    kn_tracker_mirror_replace(f->t, &s, 2, set, 2);
    assert_int_equal(kn_tracker_count(f->t, &s), 3);
    reset(&f->rec);
    /* told again, unchanged: no events */
    kn_tracker_mirror_replace(f->t, &s, 2, set, 2);
    assert_int_equal(f->rec.n, 0);
    /* the node's set is now c only, with a status: b leaves, c changes */
    set[1].status = "away";
    kn_tracker_mirror_replace(f->t, &s, 2, &set[1], 1);
    assert_int_equal(kn_tracker_count(f->t, &s), 2);
    assert_int_equal(f->rec.n, 2);
    reset(&f->rec);
    assert_int_equal(kn_tracker_mirror_join(f->t, &other, &(kn_presence){.conn = 9, .node = 2}),
                     KN_OK);
    /* the node dies: its presences leave every stream, with events */
    reset(&f->rec);
    assert_int_equal(kn_tracker_mirror_drop_node(f->t, 2), 2);
    assert_int_equal(kn_tracker_count(f->t, &s), 1);
    assert_int_equal(kn_tracker_count(f->t, &other), 1);
    assert_int_equal(f->rec.n, 2);
    /* every shared stream with members here, for a resync */
    int seen = 0;
    kn_tracker_each_shared(f->t, NULL, count_shared, &seen);
    assert_int_equal(seen, 2);
    reset(&f->rec);
}

static void a_streams_of_an_unshared_mode_never_go_out(void **state)
{
    fixture *f = *state;
    told t;
    share(f, &t);
    kn_stream s = stream(KN_STREAM_MATCH_RELAYED, "m", "");
    kn_presence a = presence(11, "a"), far = mirror(2, 5, "far");
    join(f, &s, &a);
    assert_int_equal(kn_tracker_mirror_join(f->t, &s, &far), KN_ERR_NOT_FOUND);
    assert_int_equal(kn_tracker_untrack(f->t, &s, 11), KN_OK);
    assert_int_equal(t.on + t.off + t.changed + t.sent, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(a_join_tells_the_others_but_not_the_joiner),
        T(local_changes_of_a_shared_stream_go_out_and_mirrors_count_here),
        T(the_last_local_leave_drops_the_stream_with_its_mirrors),
        T(a_nodes_set_replaces_its_mirrors_and_a_dead_nodes_presences_leave),
        T(a_streams_of_an_unshared_mode_never_go_out),
        T(a_hidden_join_tells_nobody_and_is_listed_only_when_asked),
        T(tracking_a_connection_twice_is_already_exists),
        T(list_others_is_a_snapshot_of_the_other_visible_presences),
        T(an_update_is_a_leave_of_the_old_presence_and_a_join_of_the_new),
        T(hiding_or_showing_a_presence_sends_only_the_visible_half),
        T(a_status_longer_than_the_limit_is_an_invalid_argument),
        T(an_untrack_tells_the_others_and_the_last_leave_frees_the_stream),
        T(untrack_all_takes_a_connection_off_every_stream_with_a_leave_on_each),
        T(untrack_by_handle_needs_the_streams_mode),
        T(close_takes_everyone_off_without_events_and_says_how_many),
        T(a_stream_holds_the_configs_default_unless_its_mode_or_track_says_otherwise),
        T(a_session_on_too_many_streams_is_refused),
        T(a_modes_limit_per_session_counts_only_that_mode),
        T(must_exist_does_not_create_a_stream),
        T(a_malformed_stream_is_refused),
        T(a_malformed_stream_is_on_no_lookup),
        cmocka_unit_test(create_and_mode_set_refuse_what_is_out_of_range),
        T(get_finds_a_presence_by_user_and_session_in_any_case),
        T(send_reaches_everyone_on_the_stream_but_skip_hidden_included),
        T(forward_reaches_the_other_members_or_only_the_listed_slots),
        T(forward_refuses_a_stranger_another_mode_and_bytes_that_do_not_fit),
        T(a_modes_own_build_makes_its_events_and_gets_the_streams_handle),
        T(an_event_that_cannot_be_built_or_sent_is_dropped_and_counted),
        cmocka_unit_test(a_default_event_over_max_event_size_is_dropped),
        cmocka_unit_test(every_allocation_failure_is_refused_or_survived_without_a_leak),
        cmocka_unit_test(four_threads_on_shared_streams_leave_nothing_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
