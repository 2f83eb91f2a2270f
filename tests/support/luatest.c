/* luatest: see header. */
#include "luatest.h"
#include "kn_error.h"
#include "kn_mem.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static char dir[64];

int luatest_setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/kaos-rt-XXXXXX");
    assert_non_null(mkdtemp(dir));
    return 0;
}

int luatest_teardown(void **state)
{
    (void)state;
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *luatest_dir(void)
{
    return dir;
}

void luatest_write(const char *name, const char *src)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(src, f);
    fclose(f);
}

kn_runtime_vm *luatest_load(kn_runtime **rt, const kn_lua_binding *bindings, size_t n)
{
    kn_runtime_config cfg = {.path = dir, .bindings = bindings, .n_bindings = n};
    char err[256] = "";
    int rc = kn_runtime_load(&cfg, rt, err, sizeof err);
    if (rc) fail_msg("load failed: %s", err);
    kn_runtime_vm *vm;
    assert_int_equal(kn_runtime_vm_create(*rt, &vm), KN_OK);
    return vm;
}

kn_runtime_vm *luatest_load_one(kn_runtime **rt, const char *file, const char *src,
                                const char *name, const luaL_Reg *funcs, void *ud)
{
    luatest_write(file, src);
    static kn_lua_binding binding; /* the runtime keeps a pointer to it */
    binding = (kn_lua_binding){name, funcs, ud};
    return luatest_load(rt, &binding, 1);
}

static const kn_token_var vars[] = {{"platform", "linux"}};
const kn_runtime_context luatest_ctx = {"user-1", "alice", "sess-1", "127.0.0.1",
                                        "rpc",    vars,    1,        NULL};

static char *call(kn_runtime_vm *vm, const kn_runtime_context *ctx, const char *id,
                  const char *payload, int *rc, char *msg)
{
    char *out = NULL;
    size_t n;
    *rc = kn_runtime_rpc(vm, ctx, id, payload, strlen(payload), &out, &n, msg, 256);
    return out;
}

char *luatest_call(kn_runtime_vm *vm, const char *id, const char *payload, int *rc, char *msg)
{
    return call(vm, &luatest_ctx, id, payload, rc, msg);
}

char *luatest_call_db(kn_runtime_vm *vm, kn_db *db, const char *id, const char *payload, int *rc,
                      char *msg)
{
    static int fake;
    kn_runtime_services svc = {db ? db : (kn_db *)&fake};
    kn_runtime_context with = luatest_ctx;
    with.services = &svc;
    return call(vm, &with, id, payload, rc, msg);
}

void luatest_expect(kn_runtime_vm *vm, const luatest_case *cases, size_t n)
{
    char msg[256];
    int rc;
    for (size_t i = 0; i < n; i++) {
        char *out = luatest_call_db(vm, NULL, "case", cases[i].name, &rc, msg);
        if (rc != KN_OK) fail_msg("%s: error %d: %s", cases[i].name, rc, msg);
        if (strcmp(out, cases[i].want)) fail_msg("%s: got \"%s\"", cases[i].name, out);
        kn_free(out);
    }
}
