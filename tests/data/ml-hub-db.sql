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
INSERT INTO "api_tokens" VALUES(2,NULL,1,'sha512:1:8c41246c83dcca4f:9355d62a11a9131520e157e5c9bcd111e71bd4a369fcf20e6a87aa24158cda63b226f3e6200f86c2c25b8aaf338709836a918f09c22ef0c5efc4ed71c95955ea','c01a','2026-11-30 19:05:47.868081',NULL,NULL,'a script of alice''s');
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
INSERT INTO "users" VALUES(1,'admin',1,'2020-06-01 12:00:00.000000','2020-06-01 12:00:00.000000','4923b178bb2d4cf191c1fc7c5d172bfb',NULL,NULL);
INSERT INTO "users" VALUES(2,'alice',0,'2020-06-01 12:00:00.000000','2020-06-01 12:00:00.000000','3e96a9f7db184b5a83c6a00283f60174',NULL,NULL);
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
INSERT INTO "users_info" VALUES(1,'admin',X'243262243132243358743777624E702E314439745141304879674D3065554A38694B5863682F6F6E6E346A5144774F5833676E37753663696A572E57',1,NULL,0,'JBSWY3DPEHPK3PXP');
INSERT INTO "users_info" VALUES(2,'alice',X'243262243132245A6549686A53775568304A5A6C397938522E634A642E5343524356775463693677766F502F4C62515A6B534151306D53322E5A384F',1,NULL,0,'JBSWY3DPEHPK3PXP');
CREATE INDEX ix_oauth_access_tokens_prefix ON oauth_access_tokens (prefix);
CREATE INDEX ix_api_tokens_prefix ON api_tokens (prefix);
COMMIT;
