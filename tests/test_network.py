from letterpress import network


def test_loopback_detection():
    assert network.is_loopback_url("http://127.0.0.1:8470")
    assert network.is_loopback_url("http://localhost:8470")
    assert not network.is_loopback_url("http://192.168.1.20:8470")
    assert not network.is_loopback_url("https://delivery.example.org")


def test_default_base_url_has_port_and_no_loopback_unless_nothing_else():
    url = network.default_base_url()
    assert url.startswith("http://") and url.endswith(":8470")
    addr = network.lan_address()
    if addr:
        assert addr in url and not network.is_loopback_url(url)
