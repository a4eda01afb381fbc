from tests.install.rootfs import throwaway_root  # noqa: F401  (fixture)
