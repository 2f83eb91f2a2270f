/* kn_map: see header. */
#include "kn_map.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <assert.h>
#include <stdbool.h>

static size_t hash(uint64_t k)
{
    /* splitmix64 finalizer: spreads sequential ids over the table. */
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ULL;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebULL;
    k ^= k >> 31;
    return (size_t)k;
}

uint64_t kn_map_key_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h ? h : 1;
}

void kn_map_init(kn_map *m)
{
    m->slots = NULL;
    m->cap = m->count = 0;
}

void kn_map_deinit(kn_map *m)
{
    kn_free(m->slots);
    kn_map_init(m);
}

void *kn_map_get(const kn_map *m, uint64_t key)
{
    if (!m->cap || !key) return NULL;
    for (size_t i = hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (m->slots[i].key == key) return m->slots[i].value;
        if (m->slots[i].key == 0) return NULL;
    }
}

static void insert(kn_map_entry *slots, size_t cap, uint64_t key, void *value)
{
    size_t i = hash(key) & (cap - 1);
    while (slots[i].key && slots[i].key != key) i = (i + 1) & (cap - 1);
    slots[i].key = key;
    slots[i].value = value;
}

int kn_map_put(kn_map *m, uint64_t key, void *value)
{
    assert(key != 0);
    if ((m->count + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 16;
        kn_map_entry *slots = kn_calloc(cap, sizeof *slots);
        if (!slots) return KN_ERR_NOMEM;
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) insert(slots, cap, m->slots[i].key, m->slots[i].value);
        kn_free(m->slots);
        m->slots = slots;
        m->cap = cap;
    }
    if (!kn_map_get(m, key)) m->count++;
    insert(m->slots, m->cap, key, value);
    return KN_OK;
}

void *kn_map_del(kn_map *m, uint64_t key)
{
    if (!m->cap || !key) return NULL;
    size_t mask = m->cap - 1, i = hash(key) & mask;
    while (m->slots[i].key != key) {
        if (m->slots[i].key == 0) return NULL;
        i = (i + 1) & mask;
    }
    void *value = m->slots[i].value;
    /* Backward shift: pull later entries of the probe run into the hole. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = hash(m->slots[j].key) & mask;
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = (hole <= j) ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            m->slots[hole] = m->slots[j];
            hole = j;
        }
    }
    m->slots[hole].key = 0;
    m->slots[hole].value = NULL;
    m->count--;
    return value;
}
