/* console_json: service structs as JSON for the console API, from the
 * entity tables (kn_entity.h) the wire and Lua use, so a field added to an
 * entity shows up here too. */
#include "console_internal.h"
#include "kn_entity.h"

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
