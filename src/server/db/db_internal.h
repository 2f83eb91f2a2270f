/* db_internal: shared between the db module's files only. */
#ifndef KN_DB_INTERNAL_H
#define KN_DB_INTERNAL_H

typedef struct kn_db__migration {
    int version;
    const char *name;
    const char *sql;
} kn_db__migration;

extern const kn_db__migration kn_db__migrations[];
extern const int kn_db__migration_count;

#endif
