// Defaults that more than one module needs, in one place. This module is the bottom layer: it
// imports nothing from src, so settings.ts (which documents them, README's settings table) and
// the lower modules (src/clip/checkpoint, src/prompts) all read the same value.
import { homedir } from 'node:os';
import { join } from 'node:path';

/** The model a service without MODEL serves (a Hugging Face repo id). */
export const DEFAULT_MODEL = 'openai/clip-vit-base-patch16';

/** The Hugging Face Hub (HF_ENDPOINT). */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/**
 * Where downloaded checkpoints, built graphs and text embeddings are kept (MODEL_CACHE_DIR):
 * `~/.cache/clip-anomaly`. XDG_CACHE_HOME is not consulted; set MODEL_CACHE_DIR to move it.
 */
export const DEFAULT_CACHE_DIR = join(homedir(), '.cache', 'clip-anomaly');

/** Class text embeddings kept in memory per (category, prompts) (PROMPT_CACHE_SIZE). */
export const DEFAULT_PROMPT_CACHE_SIZE = 256;
/** The image and its reference images of one request together (MAX_REQUEST_PIXELS). */
export const DEFAULT_MAX_REQUEST_PIXELS = 100_000_000;

/** Where the embedded store keeps what the service remembers (DATA_DIR): `~/.local/share/clip-anomaly`. */
export const DEFAULT_DATA_DIR = join(homedir(), '.local', 'share', 'clip-anomaly');

/** Text embedding files kept on disk at most (TEXT_EMBEDDING_STORE). */
export const TEXT_EMBEDDING_FILES = 10_000;

/** How long a map URL (format=url) serves its PNG (MAP_URL_TTL_MS): 5 minutes, time to fetch it, not to keep it. */
export const DEFAULT_MAP_URL_TTL_MS = 5 * 60_000;

/**
 * Bytes of map PNGs held for map URLs (MAP_URL_MAX_BYTES): 256 MiB, a few hundred typical maps of
 * a few hundred kB or a handful of the largest (a 50-megapixel overlay may be 50-100 MB).
 */
export const DEFAULT_MAP_URL_MAX_BYTES = 256 * 1024 * 1024;
