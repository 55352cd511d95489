from tests.factories import login_as, make_account


async def test_login_and_create_account(client):
    alice = await login_as(client)
    account = await make_account(client, alice, city="Lyon", lat=45.76, lng=4.84)
    assert account["team_id"] == alice.team_id
    response = await client.get(f"/api/accounts/{account['id']}", headers=alice.headers)
    assert response.status_code == 200, response.text
    assert response.json()["account"]["name"] == account["name"]
