/* A VM's allocator (vm_alloc.h): size classes and their boundaries, realloc
 * across classes and to and from the large path, the cap on what Lua holds
 * and on pages, pages that cannot be had, and a Lua state that makes and
 * drops many objects and gets back to where it started. */
#include "failalloc.h"
#include "kn_mem.h"
#include "vm_alloc.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

static void *heap_alloc(rt_heap *h, size_t n)
{
    return rt_heap_lua_alloc(h, NULL, LUA_TTABLE, n);
}

static void *heap_realloc(rt_heap *h, void *p, size_t o, size_t n)
{
    return rt_heap_lua_alloc(h, p, o, n);
}

static void heap_free(rt_heap *h, void *p, size_t o)
{
    assert_null(rt_heap_lua_alloc(h, p, o, 0));
}

static bool aligned(const void *p)
{
    return ((uintptr_t)p & (RT_HEAP_GRAIN - 1)) == 0;
}

static void blocks_grow_in_place_up_to_their_class_and_move_past_it(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    for (size_t n = 1; n <= RT_HEAP_SMALL_MAX; n++) {
        size_t top = (n + RT_HEAP_GRAIN - 1) / RT_HEAP_GRAIN * RT_HEAP_GRAIN; /* class size */
        unsigned char *p = heap_alloc(&h, n);
        assert_non_null(p);
        assert_true(aligned(p));
        memset(p, 0xa5, n);
        assert_ptr_equal(heap_realloc(&h, p, n, top), p); /* same class: the same block */
        memset(p, 0x5a, top);
        unsigned char *q = heap_realloc(&h, p, top, top + 1); /* next class, or large */
        assert_non_null(q);
        assert_ptr_not_equal(q, p);
        assert_true(aligned(q));
        for (size_t i = 0; i < top; i++)
            assert_int_equal(q[i], 0x5a);
        heap_free(&h, q, top + 1);
        assert_int_equal(h.used, 0);
    }
    rt_heap_deinit(&h);
}

/* An unpooled heap (API worker VMs): no pages, only the count and the cap,
 * so small objects freed after a peak do not hold memory against the cap. */
static void an_unpooled_heap_takes_no_pages_and_keeps_the_cap(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)1 << 20);
    h.pooled = false;
    void *blocks[1000];
    for (int i = 0; i < 1000; i++) assert_non_null(blocks[i] = heap_alloc(&h, 24));
    assert_int_equal(h.used, 24000);
    assert_int_equal(h.page_bytes, 0);
    void *big = heap_realloc(&h, blocks[0], 24, 600); /* small to large and back */
    assert_non_null(big);
    assert_non_null(blocks[0] = heap_realloc(&h, big, 600, 24));
    for (int i = 0; i < 1000; i++) heap_free(&h, blocks[i], 24);
    assert_int_equal(h.used, 0);
    assert_null(heap_alloc(&h, ((size_t)1 << 20) + 1)); /* the cap */
    /* After the peak is gone, a different mix of sizes still gets all of the cap. */
    void *most = heap_alloc(&h, ((size_t)1 << 20) - 64);
    assert_non_null(most);
    heap_free(&h, most, ((size_t)1 << 20) - 64);
    rt_heap_deinit(&h);
    assert_false(h.pooled); /* deinit keeps the mode */
}

static void a_freed_block_is_the_next_one_of_its_class(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    void *a = heap_alloc(&h, 40), *b = heap_alloc(&h, 40);
    assert_ptr_not_equal(a, b);
    heap_free(&h, a, 40);
    void *c = heap_alloc(&h, 100); /* another class: not a's block */
    assert_ptr_not_equal(c, a);
    assert_ptr_equal(heap_alloc(&h, 33), a); /* 33..48 share a class */
    assert_int_equal(h.used, 40 + 100 + 33);
    assert_int_equal(h.page_bytes, RT_HEAP_PAGE);
    rt_heap_deinit(&h);
    assert_int_equal(h.page_bytes, 0);
    assert_null(h.pages);
}

static void realloc_keeps_contents_between_classes_and_the_large_path(void **state)
{
    static const size_t sizes[] = {10, 100, 600, 5000, 300, 20, 513, 512, 4096, 1, 0};
    failalloc_install(-1); /* counts live blocks */
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    unsigned char *p = NULL;
    size_t have = 0;
    for (size_t i = 0; sizes[i]; i++) {
        unsigned char *q = heap_realloc(&h, p, have, sizes[i]);
        assert_non_null(q);
        size_t kept = have < sizes[i] ? have : sizes[i];
        for (size_t k = 0; k < kept; k++)
            assert_int_equal(q[k], (unsigned char)(k * 7));
        for (size_t k = 0; k < sizes[i]; k++)
            q[k] = (unsigned char)(k * 7);
        p = q;
        have = sizes[i];
        assert_int_equal(h.used, have);
    }
    heap_free(&h, p, have);
    assert_int_equal(h.used, 0);
    rt_heap_deinit(&h);
    assert_int_equal(failalloc_live(), 0);
    failalloc_remove();
}

static void growth_past_the_cap_fails_and_shrinking_does_not(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)1 << 20);
    void *big = heap_alloc(&h, (size_t)1 << 20); /* exactly the cap */
    assert_non_null(big);
    assert_null(heap_alloc(&h, 1)); /* small blocks count too */
    assert_null(heap_alloc(&h, 4096));
    assert_null(heap_realloc(&h, big, (size_t)1 << 20, ((size_t)1 << 20) + 1));
    assert_int_equal(h.used, (size_t)1 << 20);
    h.limit = 1000; /* lowered under what is held, as a match VM's may be */
    big = heap_realloc(&h, big, (size_t)1 << 20, 2000);
    assert_non_null(big);
    assert_int_equal(h.used, 2000);
    assert_null(heap_alloc(&h, 1));
    heap_free(&h, big, 2000);
    assert_int_equal(h.used, 0);
    rt_heap_deinit(&h);
}

static void pages_stay_within_the_cap_even_when_their_blocks_are_free(void **state)
{
    enum { MAX = 4 * (RT_HEAP_PAGE / RT_HEAP_GRAIN) };
    static void *blocks[MAX];
    rt_heap h;
    rt_heap_init(&h, 2 * RT_HEAP_PAGE);
    size_t n = 0;
    while (n < MAX && (blocks[n] = heap_alloc(&h, RT_HEAP_GRAIN)))
        n++;
    assert_true(n < MAX);
    assert_int_equal(h.page_bytes, 2 * RT_HEAP_PAGE); /* both carved, no third */
    for (size_t i = 0; i < n; i++)
        heap_free(&h, blocks[i], RT_HEAP_GRAIN);
    assert_int_equal(h.used, 0);
    /* Every page is parked in the smallest class: a block of another class
     * would need a third page, which the cap refuses; the freed class and
     * the large path still serve. */
    assert_null(heap_alloc(&h, 2 * RT_HEAP_GRAIN));
    void *small = heap_alloc(&h, RT_HEAP_GRAIN), *large = heap_alloc(&h, RT_HEAP_PAGE);
    assert_non_null(small);
    assert_non_null(large);
    assert_int_equal(h.page_bytes, 2 * RT_HEAP_PAGE);
    heap_free(&h, large, RT_HEAP_PAGE);
    heap_free(&h, small, RT_HEAP_GRAIN);
    rt_heap_deinit(&h);
}

static void a_page_that_cannot_be_had_fails_the_request_and_leaks_nothing(void **state)
{
    failalloc_install(0); /* the first page */
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    assert_null(heap_alloc(&h, 24));
    assert_int_equal(h.used, 0);
    assert_int_equal(h.page_bytes, 0);
    void *p = heap_alloc(&h, 24);
    assert_non_null(p);
    assert_int_equal(h.page_bytes, RT_HEAP_PAGE);
    heap_free(&h, p, 24);
    rt_heap_deinit(&h);
    assert_int_equal(failalloc_live(), 0);
    failalloc_remove();
}

/* Allocations fail while refusing is set: an allocator that stays out of
 * memory, so Lua's retry after its emergency collection fails too. */
static bool refusing;

static void *refuse_alloc(void *ud, size_t n)
{
    return refusing ? NULL : malloc(n ? n : 1);
}

static void *refuse_realloc(void *ud, void *p, size_t n)
{
    return refusing ? NULL : realloc(p, n ? n : 1);
}

static void refuse_free(void *ud, void *p)
{
    free(p);
}

static void refuse_install(void)
{
    kn_allocator a = {refuse_alloc, refuse_realloc, refuse_free, NULL};
    kn_mem_set_allocator(&a);
    refusing = false;
}

static void a_failed_realloc_keeps_the_block(void **state)
{
    refuse_install();
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    char *p = heap_alloc(&h, 24), *big = heap_alloc(&h, 1000);
    assert_non_null(p);
    assert_non_null(big);
    strcpy(p, "small");
    strcpy(big, "large");
    refusing = true;
    assert_null(heap_realloc(&h, p, 24, 2000));     /* small to large */
    assert_null(heap_realloc(&h, big, 1000, 3000)); /* large to large */
    /* Another class, from the page: no kn_malloc. */
    char *q = heap_realloc(&h, p, 24, 100);
    assert_non_null(q);
    refusing = false;
    assert_string_equal(q, "small");
    assert_string_equal(big, "large");
    assert_int_equal(h.used, 100 + 1000);
    heap_free(&h, big, 1000);
    heap_free(&h, q, 100);
    rt_heap_deinit(&h);
    kn_mem_set_allocator(NULL);
}

/* A Lua state on a heap: fills tables and strings, drops them and collects. */
static const char churn[] =
    "local keep = {}\n"
    "for i = 1, 20000 do\n"
    "  local m = {sender = {slot = i % 8, id = 'p' .. i}, op_code = 1,\n"
    "             data = string.rep('x', i % 40), tick = i, reliable = false}\n"
    "  keep[i % 500 + 1] = m\n"
    "end\n"
    "return #keep\n";

static int run_churn(lua_State *L)
{
    luaL_openlibs(L);
    if (luaL_loadstring(L, churn) != LUA_OK) return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

static int churn_in_new_state(void *arg)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    lua_State *L = lua_newstate(rt_heap_lua_alloc, &h);
    int rc = -1;
    if (L) {
        lua_pushcfunction(L, run_churn);
        rc = lua_pcall(L, 0, 1, 0) == LUA_OK && lua_tointeger(L, -1) == 500 ? 0 : -1;
        lua_close(L);
        assert_int_equal(h.used, 0);
    }
    rt_heap_deinit(&h);
    return rc;
}

static void a_state_out_of_memory_anywhere_cleans_up(void **state)
{
    assert_true(failalloc_sweep(churn_in_new_state, NULL) >= 2);
}

/* Collects until used stops falling (Lua halves its string table at most
 * once a collection). */
static void full_collect(lua_State *L, const rt_heap *h)
{
    size_t before;
    int n = 0;
    do {
        before = h->used;
        lua_gc(L, LUA_GCCOLLECT);
    } while (h->used < before && ++n < 32);
}

static void dropped_objects_bring_used_back_to_its_baseline(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)32 << 20);
    lua_State *L = lua_newstate(rt_heap_lua_alloc, &h);
    assert_non_null(L);
    luaL_openlibs(L);
    lua_gc(L, LUA_GCGEN, 0, 0); /* as match VMs run */
    assert_int_equal(luaL_loadstring(L, churn), LUA_OK);
    lua_setglobal(L, "churn");
    for (int round = 0; round < 4; round++) {
        full_collect(L, &h);
        size_t baseline = h.used, pages = h.page_bytes;
        lua_getglobal(L, "churn");
        assert_int_equal(lua_pcall(L, 0, 1, 0), LUA_OK);
        assert_int_equal(lua_tointeger(L, -1), 500);
        lua_pop(L, 1);
        full_collect(L, &h);
        /* The first round leaves Lua's string table larger for good (it
         * shrinks only down to four times its use); from then on every
         * round ends where it began, in the pages the first one took. */
        if (round == 0) continue;
        assert_int_equal(h.used, baseline);
        assert_int_equal(h.page_bytes, pages);
    }
    lua_close(L);
    assert_int_equal(h.used, 0);
    rt_heap_deinit(&h);
}

static void a_state_without_pages_raises_not_enough_memory_and_recovers(void **state)
{
    refuse_install();
    rt_heap h;
    rt_heap_init(&h, (size_t)32 << 20);
    lua_State *L = lua_newstate(rt_heap_lua_alloc, &h);
    assert_non_null(L);
    luaL_openlibs(L);
    full_collect(L, &h);
    size_t baseline = h.used;
    assert_int_equal(luaL_loadstring(L, "local t = {}\n"
                                        "for i = 1, 1e6 do t[i] = {i} end\n"),
                     LUA_OK);
    refusing = true;
    assert_int_not_equal(lua_pcall(L, 0, 0, 0), LUA_OK);
    refusing = false;
    assert_string_equal(lua_tostring(L, -1), "not enough memory");
    lua_pop(L, 1);
    full_collect(L, &h);
    assert_int_equal(h.used, baseline);
    assert_int_equal(luaL_dostring(L, "return string.rep('ab', 3) .. #{1, 2, 3}"), LUA_OK);
    assert_string_equal(lua_tostring(L, -1), "ababab3");
    lua_close(L);
    rt_heap_deinit(&h);
    kn_mem_set_allocator(NULL);
}

#ifdef TEST_ASAN
static void under_asan_free_blocks_and_slack_are_poisoned(void **state)
{
    rt_heap h;
    rt_heap_init(&h, (size_t)8 << 20);
    char *p = heap_alloc(&h, 20);
    assert_false(__asan_address_is_poisoned(p + 19));
    assert_true(__asan_address_is_poisoned(p + 20)); /* past what Lua asked for */
    assert_true(__asan_address_is_poisoned(p + 32)); /* the redzone */
    heap_free(&h, p, 20);
    assert_true(__asan_address_is_poisoned(p));
    rt_heap_deinit(&h);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(blocks_grow_in_place_up_to_their_class_and_move_past_it),
        cmocka_unit_test(a_freed_block_is_the_next_one_of_its_class),
        cmocka_unit_test(an_unpooled_heap_takes_no_pages_and_keeps_the_cap),
        cmocka_unit_test(realloc_keeps_contents_between_classes_and_the_large_path),
        cmocka_unit_test(growth_past_the_cap_fails_and_shrinking_does_not),
        cmocka_unit_test(pages_stay_within_the_cap_even_when_their_blocks_are_free),
        cmocka_unit_test(a_page_that_cannot_be_had_fails_the_request_and_leaks_nothing),
        cmocka_unit_test(a_failed_realloc_keeps_the_block),
        cmocka_unit_test(a_state_out_of_memory_anywhere_cleans_up),
        cmocka_unit_test(dropped_objects_bring_used_back_to_its_baseline),
        cmocka_unit_test(a_state_without_pages_raises_not_enough_memory_and_recovers),
#ifdef TEST_ASAN
        cmocka_unit_test(under_asan_free_blocks_and_slack_are_poisoned),
#endif
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
