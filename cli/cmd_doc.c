/* The commands about hq itself, generated from the command table: `hq doc [TOPIC]`
 * (where a topic is documented), `hq generate-completion SHELL` and the hidden
 * `hq generate-man DIR` that writes the man pages (and completions) for installs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "gen.h"
#include "hq_util.h"

/* Concepts that are not commands, and where they are described. */
static const struct {
    const char *topic;
    const char *where;
} s_concepts[] = {
    {"durations", "cli/REFERENCE.md §1.1 (value syntaxes: durations)"},
    {"selectors", "cli/REFERENCE.md §1.2 (id selectors)"},
    {"resources", "cli/REFERENCE.md §1.3, §1.4 (task resource requests, worker resources)"},
    {"placeholders", "cli/REFERENCE.md §1.5, §1.6 (stdout/stderr paths, placeholders)"},
    {"environment", "cli/REFERENCE.md §1.7 (task environment)"},
    {"states", "cli/REFERENCE.md §1.8 (job and task states)"},
    {"server-dir", "cli/REFERENCE.md §2 (server directory and access file)"},
    {"output", "cli/REFERENCE.md §4-§7 (tables, JSON and quiet output)"},
    {"jobfile", "cli/REFERENCE.md §8 (job definition files)"},
    {"streaming", "cli/REFERENCE.md §3.3, §3.6 (--stream, hq output-log, --follow)"},
    {"autoalloc", "cli/REFERENCE.md §3.7 (automatic allocation: queues, demand, scripts)"},
    {"journal-format", "broker/JOURNAL.md (the journal's on-disk format)"},
    {"guarantees", "broker/GUARANTEES.md (durability, fault and security guarantees)"},
    {"protocol", "proto/wire/PROTOCOL.md (the wire protocol)"},
    {"install", "README.md (building, the release tarball, installing without root)"},
};
#define S_NCONCEPTS (sizeof s_concepts / sizeof s_concepts[0])

/* The man page a command is described in: hq-<first word>(1), or hq(1). */
static char *s_man_page(const hq_cmd_spec_t *spec)
{
    const hq_cmd_spec_t *page = hq_gen_man_page_of(spec);
    return *page->path ? hq_asprintf("hq-%s(1)", page->path) : hq_strdup("hq(1)");
}

static void s_list_topics(void)
{
    printf("Documentation topics (hq doc <TOPIC>):\n\nCommands:\n");
    for (size_t i = 0; hq_cmd_at(i); i++) {
        const hq_cmd_spec_t *s = hq_cmd_at(i);
        if (*s->path && !s->hidden)
            printf("  %-24s %s\n", s->path, s->summary);
    }
    printf("\nConcepts:\n");
    for (size_t i = 0; i < S_NCONCEPTS; i++)
        printf("  %-24s %s\n", s_concepts[i].topic, s_concepts[i].where);
    printf("\nThe man pages: man hq, man hq-<group> (e.g. man hq-job). The reference documents\n"
           "are in hq's source tree and release tarball.\n");
}

int hq_cmd_doc(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "doc", argc, argv);
    if (rc >= 0)
        return rc;
    size_t n = hq_args_npos(c.args);
    if (n == 0) {
        s_list_topics();
        hq_cli_end(&c);
        return 0;
    }
    /* The topic may be given as several words: `hq doc job cat`. */
    hq_buf_t topic = {0};
    for (size_t i = 0; i < n; i++)
        hq_buf_printf(&topic, "%s%s", i ? " " : "", hq_args_pos(c.args, i));
    const hq_cmd_spec_t *spec = hq_cmd_find(topic.data);
    if (spec && !spec->hidden) {
        char *man = s_man_page(spec);
        printf("hq %s: %s\n  man page:  %s (man %.*s)\n  reference: %s\n", spec->path,
               spec->summary, man, (int)(strchr(man, '(') - man), man,
               spec->reference ? spec->reference : "cli/REFERENCE.md");
        free(man);
        rc = 0;
        goto out;
    }
    for (size_t i = 0; i < S_NCONCEPTS; i++)
        if (strcmp(topic.data, s_concepts[i].topic) == 0) {
            printf("%s: %s\n", s_concepts[i].topic, s_concepts[i].where);
            rc = 0;
            goto out;
        }
    const char *names[128];
    size_t k = 0;
    for (size_t i = 0; hq_cmd_at(i) && k < 100; i++)
        if (*hq_cmd_at(i)->path && !hq_cmd_at(i)->hidden)
            names[k++] = hq_cmd_at(i)->path;
    for (size_t i = 0; i < S_NCONCEPTS; i++)
        names[k++] = s_concepts[i].topic;
    const char *similar = hq_args_similar(topic.data, names, k);
    fprintf(stderr, "error: invalid value '%s' for '[TOPIC]': no such command or topic\n",
            topic.data);
    if (similar)
        fprintf(stderr, "\n  tip: a similar topic exists: '%s'\n", similar);
    fprintf(stderr, "\nRun `hq doc` for the list of topics.\n");
    rc = 2;
out:
    hq_buf_free(&topic);
    hq_cli_end(&c);
    return rc;
}

int hq_cmd_generate_completion(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "generate-completion", argc, argv);
    if (rc >= 0)
        return rc;
    const char *shell = hq_args_pos(c.args, 0);
    if (hq_gen_completion(shell, stdout) != 0) {
        fprintf(stderr,
                "error: invalid value '%s' for '<SHELL>'\n  [possible values: bash, elvish, "
                "fish, powershell, zsh]\n\nFor more information, try '--help'.\n",
                shell);
        rc = 2;
    } else
        rc = 0;
    hq_cli_end(&c);
    return rc;
}

/* Writes one generated file into dir; returns 0 or 1 (error printed). */
static int s_write(hq_cli_t *c, const char *dir, const char *name, const char *shell,
                   const hq_cmd_spec_t *page)
{
    char *path = hq_asprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    int rc = 0;
    if (!f) {
        rc = hq_cli_error(c, "Cannot write %s: %s", path, strerror(errno));
    } else {
        if (shell)
            hq_gen_completion(shell, f);
        else
            hq_gen_man(page, f);
        if (fclose(f) != 0)
            rc = hq_cli_error(c, "Cannot write %s: %s", path, strerror(errno));
    }
    free(path);
    return rc;
}

int hq_cmd_generate_man(int argc, char **argv)
{
    hq_cli_t c;
    int rc = hq_cli_begin(&c, "generate-man", argc, argv);
    if (rc >= 0)
        return rc;
    const char *dir = hq_args_pos(c.args, 0);
    rc = 0;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        rc = hq_cli_error(&c, "Cannot create %s: %s", dir, strerror(errno));
    for (size_t i = 0; rc == 0 && hq_gen_man_page_at(i); i++) {
        const hq_cmd_spec_t *page = hq_gen_man_page_at(i);
        char *name = *page->path ? hq_asprintf("hq-%s.1", page->path) : hq_strdup("hq.1");
        rc = s_write(&c, dir, name, NULL, page);
        free(name);
    }
    if (rc == 0 && hq_args_has(c.args, "completions")) {
        static const char *const files[][2] = {
            {"hq.bash", "bash"}, {"_hq", "zsh"}, {"hq.fish", "fish"}};
        for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++)
            rc = s_write(&c, dir, files[i][0], files[i][1], NULL);
    }
    hq_cli_end(&c);
    return rc;
}
