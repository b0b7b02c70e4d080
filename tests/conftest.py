pytest_plugins = ["graphnet.testing.plugin"]
