"""What the test suites share, importable as ``tests.support.*``: hand-made images
(``images``), root filesystems (``rootfs``), the unprivileged test user (``users``), real
registry servers (``registry``), layer snapshots (``layers``), file trees (``trees``), the
differential comparison (``differential``) with its two peers, the Docker engine (``docker``:
a private dockerd, its BuildKit builds, probes under ``docker run``'s profiles) and buildah
(``buildah``), and skip marks (``marks``).

Fixtures stay in the ``conftest.py`` of the suite that uses them; nothing here is a fixture,
and no test imports a conftest.
"""
