/* console_json: service structs as JSON for the console API, from the
 * entity tables (kn_entity.h) the wire and Lua use, so a field added to an
 * entity shows up here too. */
#include "console_internal.h"
#include "kn_db.h"
#include "kn_entity.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <stdio.h>

#include <string.h>

void kn_console__set_text(kn_json *o, const char *key, const char *text)
{
    kn_json *v = text ? kn_json_string(text) : NULL;
    kn_json_object_set_new(o, key, v ? v : kn_json_null());
}

void kn_console__set_json(kn_json *o, const char *key, const char *text)
{
    kn_json *v = text ? kn_json_parse(text, strlen(text), KN_JSON_DECODE_ANY, NULL) : NULL;
    if (!v) {
        kn_console__set_text(o, key, text);
        return;
    }
    kn_json_object_set_new(o, key, v);
}

kn_json *kn_console__entity(const kn_entity *e, const void *obj)
{
    kn_json *o = kn_json_object();
    for (size_t i = 0; o && i < e->n_fields; i++) {
        const kn_entity_field *f = &e->fields[i];
        switch (f->kind) {
        case KN_FIELD_STRING:
            kn_console__set_text(o, f->name, kn_entity_text(f, obj));
            break;
        case KN_FIELD_JSON:
            kn_console__set_json(o, f->name, kn_entity_text(f, obj));
            break;
        case KN_FIELD_BOOL:
            kn_json_object_set_new(o, f->name, kn_json_boolean(kn_entity_integer(f, obj) != 0));
            break;
        default:
            kn_json_object_set_new(o, f->name, kn_json_integer(kn_entity_integer(f, obj)));
        }
    }
    return o;
}

kn_json *kn_console__list(const char *key, kn_json *array, const char *next_cursor)
{
    kn_json *o = kn_json_object();
    kn_json_object_set_new(o, key, array);
    kn_console__set_text(o, "cursor", next_cursor && *next_cursor ? next_cursor : NULL);
    return o;
}

int kn_console__page_args(kn_console_call *c, const char *id_name, const char **id, int64_t *limit,
                          const char **cursor)
{
    int rc;
    if (id_name && (rc = kn_console__need(c, id_name, id))) return rc;
    *cursor = kn_console__arg(c, "cursor");
    return kn_console__int_arg(c, "limit", 25, 1, 100, limit);
}

int kn_console__query_page(kn_console_call *c, const kn_db_stmt *stmt, const char *const *cols,
                           size_t n_cols, size_t cursor_col, const char *list_key)
{
    const char *unused, *cur;
    int64_t limit;
    int rc = kn_console__page_args(c, NULL, &unused, &limit, &cur);
    if (rc) return rc;
    const char *q = kn_console__arg(c, "q");
    char lim[24];
    snprintf(lim, sizeof lim, "%lld", (long long)limit);
    const char *params[] = {q ? q : "", cur ? cur : "", lim};
    kn_db_rows *rows = NULL;
    if ((rc = kn_db_query(c->db, stmt, params, &rows)))
        return kn_db_fail(rc, c->msg, sizeof c->msg);
    kn_json *arr = kn_json_array();
    size_t n = kn_db_rows_count(rows);
    for (size_t i = 0; i < n; i++) {
        kn_json *o = kn_json_object();
        for (size_t k = 0; k < n_cols; k++)
            kn_console__set_text(o, cols[k], kn_db_rows_get(rows, i, k));
        kn_json_array_append_new(arr, o);
    }
    c->result = kn_console__list(
        list_key, arr, n == (size_t)limit ? kn_db_rows_get(rows, n - 1, cursor_col) : NULL);
    kn_db_rows_free(rows);
    return KN_OK;
}

kn_json *kn_console__answer(const char *key, char *bytes, size_t len)
{
    kn_json *o = kn_json_object();
    kn_json *v = kn_json_stringn(bytes ? bytes : "", bytes ? len : 0);
    kn_json_object_set_new(o, key, v ? v : kn_json_string("(not UTF-8)"));
    kn_free(bytes);
    return o;
}
