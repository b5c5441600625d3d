"""Expansion sees the base image's environment, as BuildKit's does: ``ENV PATH=/x:$PATH``
keeps the base's PATH (a very common line in data-science Dockerfiles)."""

from nbcontainer.dockerfile import parse


def test_env_extends_the_base_images_path(do_build):
    base = do_build('FROM busybox\nENV PATH=/usr/bin:/bin TOOL_HOME=/opt/tool\n', tags=["b:1"])
    assert base.config.config.env_dict()["PATH"] == "/usr/bin:/bin"
    img = do_build("FROM b:1\nENV PATH=/opt/venv/bin:$PATH\nWORKDIR $TOOL_HOME\n"
                   "RUN echo $PATH > /seen\n")
    env = img.config.config.env_dict()
    assert env["PATH"] == "/opt/venv/bin:/usr/bin:/bin"
    assert img.config.config.working_dir == "/opt/tool"


def test_plan_asks_only_for_bases_the_target_needs():
    asked = []

    def base_env(image, platform):
        asked.append(image)
        return {"PATH": "/base"}

    plan = parse("FROM unused/image AS never\nFROM busybox AS b\nENV PATH=/x:$PATH\n"
                 "FROM b\nENV Y=$PATH\n", base_env=base_env)
    assert asked == ["busybox"]
    assert plan.stages[2].env["Y"] == "/x:/base"
    assert parse("FROM busybox\nENV P=$PATH\n").stages[0].env["P"] == ""  # no hook: empty
