#!/bin/sh
set -e
echo installing myapp
