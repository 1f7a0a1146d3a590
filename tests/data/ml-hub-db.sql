-- ML Hub's database: JupyterHub 1.5.1 + ML Hub's NativeAuthenticator fork.
-- Made by devtools/make_ml_hub_db.py; load with sqlite3's executescript.
BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('4dc2d5a8c53c');
CREATE TABLE api_tokens (
	user_id INTEGER, 
	service_id INTEGER, 
	id INTEGER NOT NULL, 
	hashed VARCHAR(255), 
	prefix VARCHAR(16), 
	created DATETIME, 
	expires_at DATETIME, 
	last_activity DATETIME, 
	note VARCHAR(1023), 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	FOREIGN KEY(service_id) REFERENCES services (id) ON DELETE CASCADE, 
	UNIQUE (hashed)
);
CREATE TABLE groups (
	id INTEGER NOT NULL, 
	name VARCHAR(255), 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE oauth_access_tokens (
	id INTEGER NOT NULL, 
	client_id VARCHAR(255), 
	grant_type VARCHAR(18) NOT NULL, 
	expires_at INTEGER, 
	refresh_token VARCHAR(255), 
	refresh_expires_at INTEGER, 
	user_id INTEGER, 
	session_id VARCHAR(255), 
	hashed VARCHAR(255), 
	prefix VARCHAR(16), 
	created DATETIME, 
	last_activity DATETIME, 
	PRIMARY KEY (id), 
	FOREIGN KEY(client_id) REFERENCES oauth_clients (identifier) ON DELETE CASCADE, 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	UNIQUE (hashed)
);
CREATE TABLE oauth_clients (
	id INTEGER NOT NULL, 
	identifier VARCHAR(255), 
	description VARCHAR(1023), 
	secret VARCHAR(255), 
	redirect_uri VARCHAR(1023), 
	PRIMARY KEY (id), 
	UNIQUE (identifier)
);
CREATE TABLE oauth_codes (
	id INTEGER NOT NULL, 
	client_id VARCHAR(255), 
	code VARCHAR(36), 
	expires_at INTEGER, 
	redirect_uri VARCHAR(1023), 
	session_id VARCHAR(255), 
	user_id INTEGER, 
	PRIMARY KEY (id), 
	FOREIGN KEY(client_id) REFERENCES oauth_clients (identifier) ON DELETE CASCADE, 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE
);
CREATE TABLE servers (
	id INTEGER NOT NULL, 
	proto VARCHAR(15), 
	ip VARCHAR(255), 
	port INTEGER, 
	base_url VARCHAR(255), 
	cookie_name VARCHAR(255), 
	PRIMARY KEY (id)
);
CREATE TABLE services (
	id INTEGER NOT NULL, 
	name VARCHAR(255), 
	admin BOOLEAN, 
	_server_id INTEGER, 
	pid INTEGER, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	FOREIGN KEY(_server_id) REFERENCES servers (id) ON DELETE SET NULL
);
CREATE TABLE spawners (
	id INTEGER NOT NULL, 
	user_id INTEGER, 
	server_id INTEGER, 
	state TEXT, 
	name VARCHAR(255), 
	started DATETIME, 
	last_activity DATETIME, 
	user_options TEXT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	FOREIGN KEY(server_id) REFERENCES servers (id) ON DELETE SET NULL
);
INSERT INTO "spawners" VALUES(1,2,NULL,'{"container_id": "0000000000000000000000000000000000000000000000000000000000000000", "object_name": "ws-alice-mlhubgpu"}','gpu','2020-06-01 12:00:00.000000','2020-06-01 12:00:00.000000','{"image": "mltooling/ml-workspace:0.8.7", "cpu_limit": "2", "days_to_live": "3"}');
CREATE TABLE user_group_map (
	user_id INTEGER NOT NULL, 
	group_id INTEGER NOT NULL, 
	PRIMARY KEY (user_id, group_id), 
	FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, 
	FOREIGN KEY(group_id) REFERENCES groups (id) ON DELETE CASCADE
);
CREATE TABLE users (
	id INTEGER NOT NULL, 
	name VARCHAR(255), 
	admin BOOLEAN, 
	created DATETIME, 
	last_activity DATETIME, 
	cookie_id VARCHAR(255) NOT NULL, 
	state TEXT, 
	encrypted_auth_state BLOB, 
	PRIMARY KEY (id), 
	UNIQUE (name), 
	UNIQUE (cookie_id)
);
INSERT INTO "users" VALUES(1,'admin',1,'2020-06-01 12:00:00.000000','2020-06-01 12:00:00.000000','21a437d426f04bea9929f11c97eb9c20',NULL,NULL);
INSERT INTO "users" VALUES(2,'alice',0,'2020-06-01 12:00:00.000000','2020-06-01 12:00:00.000000','1d6a01a018da456badfb860f97e00bb9',NULL,NULL);
CREATE TABLE users_info (
	id INTEGER NOT NULL, 
	username VARCHAR NOT NULL, 
	password BLOB NOT NULL, 
	is_authorized BOOLEAN, 
	email VARCHAR, 
	has_2fa BOOLEAN, 
	otp_secret VARCHAR(16), 
	PRIMARY KEY (id)
);
INSERT INTO "users_info" VALUES(1,'admin',X'24326224313224656C4F454F617A67456B6D5454514539684F6D70584F78796551445334694D52494F743630323533714E784F44454463796150492E',1,NULL,0,'JBSWY3DPEHPK3PXP');
INSERT INTO "users_info" VALUES(2,'alice',X'243262243132244C5A307546676C31415471576F736E687A70546D724F4E57736343366642314F35776B7A7675664B52434C78377644323537725965',1,NULL,0,'JBSWY3DPEHPK3PXP');
CREATE INDEX ix_oauth_access_tokens_prefix ON oauth_access_tokens (prefix);
CREATE INDEX ix_api_tokens_prefix ON api_tokens (prefix);
COMMIT;
