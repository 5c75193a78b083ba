/* The connection file is written (as root) into a sandbox's run/, which the kernel can
 * write: links it planted there, at the file's name or at the temporary name the old
 * code used, are never followed, and the file is the kernel's only once complete. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/kernel.h"
#include "common/fsat.h"
#include "common/util.h"

static void test_connection_file_never_through_a_link(void **state)
{
    (void)state;
    char base[64];
    snprintf(base, sizeof(base), "/tmp/lb-kernel-XXXXXX");
    assert_non_null(mkdtemp(base));
    char *victim = xasprintf("%s/victim", base), *path = xasprintf("%s/kernel-x.json", base);
    char *old_tmp = xasprintf("%s.~tmp%ld", path, (long)getpid());
    int fd = open(victim, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    assert_int_equal(symlink(victim, path), 0);
    assert_int_equal(symlink(victim, old_tmp), 0);
    int ports[KPORT_COUNT] = {1, 2, 3, 4, 5};
    uid_t owner = geteuid() == 0 ? 123456 : (uid_t)-1;
    assert_int_equal(
        kernel_write_connection(path, "ipc", "/run/labbook/k", ports, "00", "python3", owner), 0);
    struct stat st;
    assert_int_equal(lstat(victim, &st), 0);
    assert_int_equal(st.st_size, 4);
    assert_int_equal(st.st_uid, geteuid());
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    if (owner != (uid_t)-1)
        assert_int_equal(st.st_uid, owner);
    fs_remove_path(base, 0);
    free(victim);
    free(path);
    free(old_tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_file_never_through_a_link),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
