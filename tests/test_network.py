from letterpress import network


def test_loopback_detection():
    assert network.is_loopback_url("http://127.0.0.1:8470")
    assert network.is_loopback_url("http://localhost:8470")
    assert not network.is_loopback_url("http://192.168.1.20:8470")
    assert not network.is_loopback_url("https://delivery.example.org")


def test_default_base_url_has_port_and_no_loopback_unless_nothing_else(monkeypatch):
    monkeypatch.setattr(network, "lan_address", lambda: "192.168.1.20")
    url = network.default_base_url()
    assert url == "http://192.168.1.20:8470" and not network.is_loopback_url(url)
    monkeypatch.setattr(network, "lan_address", lambda: None)
    url = network.default_base_url()
    assert url == "http://127.0.0.1:8470" and network.is_loopback_url(url)


def test_lan_address_is_an_ipv4_address_or_none():
    addr = network.lan_address()
    assert addr is None or (len(addr.split(".")) == 4 and not addr.startswith("127."))
