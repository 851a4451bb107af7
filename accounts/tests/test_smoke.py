def test_me_answers_the_logged_in_user(auth_client, user):
    response = auth_client.get("/api/v1/users/me")
    assert response.status_code == 200
    assert response.json()["username"] == user.username
